"""quakestack.jobs.fanout: shares cover every item once, indexes come from the environment (local or an
Indexed Job's completion index), and locally started peers die with the process that started them."""

from __future__ import annotations

import signal
import subprocess
import sys

import psutil
import pytest

from quakestack.jobs import fanout


def test_shares_cover_every_item_exactly_once() -> None:
    items = list(range(17))
    shares = [fanout.share(items, i, 4) for i in range(4)]
    assert sorted(x for s in shares for x in s) == items
    assert shares[1] == [1, 5, 9, 13]
    with pytest.raises(ValueError, match="outside 0..3"):
        fanout.share(items, 4, 4)


def test_index_and_count_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (fanout.INDEX_ENV, fanout.COUNT_ENV, fanout.COMPLETION_INDEX_ENV):
        monkeypatch.delenv(name, raising=False)
    assert fanout.index() == 0 and fanout.count(3) == 3
    monkeypatch.setenv(fanout.COMPLETION_INDEX_ENV, "2")  # a pod of an Indexed Job
    assert fanout.index() == 2
    monkeypatch.setenv(fanout.INDEX_ENV, "1")
    monkeypatch.setenv(fanout.COUNT_ENV, "4")
    assert fanout.index() == 1 and fanout.count() == 4


LEADER = """
import sys, time
from quakestack.jobs import fanout
PEER = "import os, time; print(os.environ['JOB_FANOUT_INDEX'], flush=True); time.sleep(60)"
peers = fanout.spawn_peers(["-c", PEER], 3)
print(" ".join(str(p.pid) for p in peers), flush=True)
time.sleep(60)
"""


def test_peers_get_their_index_and_die_with_their_leader() -> None:
    leader = subprocess.Popen([sys.executable, "-c", LEADER], stdout=subprocess.PIPE, text=True)
    try:
        lines = [leader.stdout.readline().strip() for _ in range(3)]
        pids = [int(p) for p in next(line for line in lines if " " in line).split()]
        assert sorted(line for line in lines if " " not in line) == ["1", "2"]
        peers = [psutil.Process(pid) for pid in pids]
        assert all(p.is_running() for p in peers) and len(peers) == 2
        leader.send_signal(signal.SIGKILL)
        leader.wait(10)
        _, alive = psutil.wait_procs(peers, timeout=10)
        assert not alive, "peers outlived their leader"
    finally:
        if leader.poll() is None:
            leader.kill()
            leader.wait(10)


def test_stop_peers_reaps_them() -> None:
    peers = fanout.spawn_peers(["-c", "import time; time.sleep(60)"], 3)
    assert fanout.stop_peers(peers) == [-signal.SIGKILL, -signal.SIGKILL]
