"""The job runtime's storage primitives on the real embedded SeaweedFS: conditional writes under
concurrent puts, leases (one winner, fencing token, take-over after expiry), the event log
(concurrent appenders, readers with their own cursor, O(1) writes) and the control record."""

from __future__ import annotations

import threading
import time

import pytest

from quakestack.errors import Conflict
from quakestack.jobs.control import create_control, read_control, update_control
from quakestack.jobs.events import EventLog
from quakestack.jobs.lease import Leases
from quakestack.jobs.state import JobState, allowed
from quakestack.jobs.status import fold


def _race(count: int, fn) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = ("ok", fn(i))
        except Conflict:
            results[i] = ("conflict", None)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("trial", range(5))
def test_conditional_create_and_replace_have_one_winner_under_concurrent_puts(store, trial) -> None:
    key = f"tests/conditional/{trial}-{time.time_ns()}"
    created = _race(8, lambda i: store.put_if(key, f"v{i}".encode()))
    winners = [i for i, r in enumerate(created) if r[0] == "ok"]
    assert len(winners) == 1 and store.get_bytes(key) == f"v{winners[0]}".encode()
    _, etag = store.get_with_etag(key)
    replaced = _race(8, lambda i: store.put_if(key, f"u{i}".encode(), etag=etag))
    winners = [i for i, r in enumerate(replaced) if r[0] == "ok"]
    assert len(winners) == 1 and store.get_bytes(key) == f"u{winners[0]}".encode()
    with pytest.raises(Conflict):
        store.put_if(key, b"stale", etag=etag)


def test_lease_one_holder_fencing_token_and_takeover_after_expiry(store) -> None:
    """The race runs under a long TTL (a loaded runner once took 3 s for it and the lease lapsed); the
    take-over is then provoked by renewing the lease for 0.5 s, so no step depends on the machine's speed."""
    job_id = f"lease-{time.time_ns()}"
    replicas = [Leases(store, f"replica-{i}", ttl_s=60.0) for i in range(6)]
    got = _race(6, lambda i: replicas[i].acquire(job_id))
    holders = [(i, r[1]) for i, r in enumerate(got) if r[1] is not None]
    assert len(holders) == 1
    index, lease = holders[0]
    other = replicas[(index + 1) % 6]
    assert other.acquire(job_id) is None, "a live lease is not taken"
    renewed = Leases(store, replicas[index].owner, ttl_s=0.5).renew(lease)
    assert renewed is not None and renewed.token == lease.token
    time.sleep(0.7)
    taken = other.acquire(job_id)
    assert taken is not None and taken.token == lease.token + 1, "take-over bumps the fencing token"
    assert replicas[index].renew(renewed) is None, "the old holder learns it lost the lease"


def test_event_log_concurrent_appenders_and_cursors(store) -> None:
    job_id = f"events-{time.time_ns()}"
    logs = [EventLog(store, job_id) for _ in range(4)]
    _race(4, lambda i: [logs[i].append({"type": "progress", "writer": i, "n": n}) for n in range(5)])
    events = EventLog(store, job_id).read()
    assert [e["sequence"] for e in events] == list(range(1, 21)), "every event kept, no sequence twice"
    assert sorted((e["writer"], e["n"]) for e in events) == sorted((w, n) for w in range(4) for n in range(5))
    assert [e["sequence"] for e in EventLog(store, job_id).read(after=17)] == [18, 19, 20]


def test_event_n_costs_one_put(store, monkeypatch) -> None:
    log = EventLog(store, f"cost-{time.time_ns()}")
    log.append({"type": "progress"})
    calls = []
    original = store.put_if
    monkeypatch.setattr(store, "put_if", lambda *a, **k: calls.append(a[0]) or original(*a, **k))
    monkeypatch.setattr(store, "list", lambda *a, **k: pytest.fail("an append must not list the log"))
    for _ in range(30):
        log.append({"type": "progress"})
    assert len(calls) == 30


def test_control_updates_never_overwrite_each_other(store) -> None:
    job_id = f"control-{time.time_ns()}"
    create_control(store, job_id, epochs=5)
    _race(6, lambda i: update_control(store, job_id, **{f"field{i}": i}))
    value = read_control(store, job_id)
    assert value["epochs"] == 5 and all(value[f"field{i}"] == i for i in range(6))


def test_the_fold_ignores_illegal_transitions_and_duplicate_epochs() -> None:
    events = [{"sequence": 1, "type": "state", "state": "QUEUED"},
              {"sequence": 2, "type": "state", "state": "RUNNING"},
              {"sequence": 3, "type": "epoch", "epoch": 1, "train_loss": 1.0, "elapsed_s": 1.0},
              {"sequence": 4, "type": "epoch", "epoch": 1, "train_loss": 9.0, "elapsed_s": 9.0},
              {"sequence": 5, "type": "state", "state": "CANCELLED"},
              {"sequence": 6, "type": "state", "state": "SUCCEEDED"}]
    status, accepted = fold("2026-01-01T00:00:00+00:00", events)
    assert status["state"] == "CANCELLED" and status["epochs_done"] == 1 and status["elapsed_s"] == 1.0
    assert [e["sequence"] for e in accepted] == [1, 2, 3, 5]
    assert not allowed(JobState.CANCELLED, JobState.QUEUED) and allowed(JobState.STOPPED, JobState.QUEUED)
