"""Fan-out of one job over several worker processes: each has an index and a count, and takes items ``i::n``.

Locally, rank 0 (the process the executor started) starts the ``count - 1`` peers itself, in its own
process group and tied to its life (PR_SET_PDEATHSIG), so a cancel (``kill_own_group``) or the death
of rank 0 ends them all. On Kubernetes every peer is a pod of an Indexed Job and its index is the
completion index (``JOB_COMPLETION_INDEX``); the count comes with the pod's environment. Job kinds
that split their work into independent items (station-days, dataset shards) share this module.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import TypeVar

from quakestack.errors import InvalidArgument

# not QUAKESTACK_*: settings refuse unknown QUAKESTACK_ variables, and these describe a process, not a setting
INDEX_ENV = "JOB_FANOUT_INDEX"
COUNT_ENV = "JOB_FANOUT_COUNT"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by Kubernetes in every pod of an Indexed Job
PR_SET_PDEATHSIG = 1
MAX_WORKERS = 256  # an Indexed Job's pods; far beyond one machine, which shares its cores among them
T = TypeVar("T")


def index() -> int:
    """This process's index among the job's workers (0 when it is the only one, or the one that reports)."""
    text = os.environ.get(INDEX_ENV) or os.environ.get(COMPLETION_INDEX_ENV) or "0"
    return int(text)


def count(default: int = 1) -> int:
    """How many workers share the job (the environment's, else default)."""
    return max(1, int(os.environ.get(COUNT_ENV) or default))


def requested_workers(value: int) -> int:
    """A request's worker count (0: one), INVALID_ARGUMENT outside [1, MAX_WORKERS]."""
    workers = 1 if not value else int(value)
    if not 1 <= workers <= MAX_WORKERS:
        raise InvalidArgument(f"workers must be in [1, {MAX_WORKERS}], got {workers}")
    return workers


def in_pods() -> bool:
    """Whether this worker is one pod of an Indexed Job (its peers are pods too), not a local process."""
    return COMPLETION_INDEX_ENV in os.environ


def local_share(total: int, n: int) -> int:
    """Worker processes of n local peers each get this many of `total` (CPU threads, render processes);
    a pod of an Indexed Job has its own and keeps them all."""
    return total if in_pods() else max(1, total // n)


def share(items: Sequence[T], i: int, n: int) -> list[T]:
    """Worker i's items of n workers: every n-th from the i-th, so consecutive items spread over workers."""
    if not 0 <= i < n:
        raise ValueError(f"worker index {i} is outside 0..{n - 1}")
    return list(items[i::n])


def die_with_parent() -> None:
    """The kernel SIGKILLs this process when the one that started it dies (as a Popen preexec_fn: before exec)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn_peers(argv: Sequence[str], n: int, env: dict[str, str] | None = None) -> list[subprocess.Popen]:
    """Start workers 1..n-1 of n running ``python argv`` with their index and the count in the environment.

    They stay in this process's group and die with it; their output goes where this process's goes."""
    base = dict(os.environ if env is None else env)
    peers = []
    for i in range(1, n):
        peer_env = {**base, INDEX_ENV: str(i), COUNT_ENV: str(n)}
        peers.append(subprocess.Popen([sys.executable, *argv], env=peer_env, stdin=subprocess.DEVNULL,
                                      preexec_fn=die_with_parent))  # noqa: PLW1509 - prctl only, no locks
    return peers


def stop_peers(peers: Sequence[subprocess.Popen], timeout_s: float = 10.0) -> list[int | None]:
    """SIGKILL the peers still running and reap all of them; their exit codes."""
    for peer in peers:
        if peer.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                peer.kill()
    codes = []
    for peer in peers:
        try:
            codes.append(peer.wait(timeout_s))
        except subprocess.TimeoutExpired:
            codes.append(None)
    return codes
