"""Heartbeats: a worker proves it is alive by rewriting `heartbeat.json`; schedulers watch it change.

Staleness is judged on the watcher's own monotonic clock (how long since it last saw the beat
counter move), never by comparing clocks of two machines; time during which the watcher itself
cannot read storage does not count against the worker.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import psutil

from quakestack.errors import NotFound
from quakestack.layout import heartbeat_key, peer_heartbeat_key
from quakestack.storage import ObjectStore


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """Enough to recognise this process again from another one (pid reuse included)."""
    proc = psutil.Process(pid or os.getpid())
    return {"host": socket.gethostname(), "pid": proc.pid, "pid_start": proc.create_time()}


def _key(job_id: str, rank: int) -> str:
    return heartbeat_key(job_id) if rank == 0 else peer_heartbeat_key(job_id, rank)


def write_heartbeat(store: ObjectStore, job_id: str, attempt: int, beat: int, rank: int = 0, **extra: Any) -> None:
    """Rank 0's beat is the job's (schedulers watch it); a fan-out peer's is watched by rank 0 alone."""
    body = {"job_id": job_id, "attempt": attempt, "beat": beat, "time": time.time(), **process_identity(),
            **extra}
    store.put_bytes(_key(job_id, rank), json.dumps(body).encode(), content_type="application/json")


def read_heartbeat(store: ObjectStore, job_id: str, rank: int = 0) -> dict[str, Any] | None:
    try:
        return json.loads(store.get_bytes(_key(job_id, rank)))
    except NotFound:
        return None


class HeartbeatWatch:
    """Whether a worker's beats still move, seen from one scheduler."""

    def __init__(self, lost_after_s: float):
        self.lost_after_s = lost_after_s
        self._seen: tuple[Any, ...] | None = None
        self._since = time.monotonic()

    def reset(self) -> None:
        self._seen, self._since = None, time.monotonic()

    def storage_unreachable(self) -> None:
        self._since = time.monotonic()  # an outage on our side proves nothing about the worker

    def observe(self, heartbeat: dict[str, Any] | None) -> None:
        key = None if heartbeat is None else (heartbeat.get("attempt"), heartbeat.get("beat"), heartbeat.get("pid"))
        if key != self._seen:
            self._seen, self._since = key, time.monotonic()

    def stale_for(self) -> float:
        return time.monotonic() - self._since

    @property
    def lost(self) -> bool:
        return self.stale_for() > self.lost_after_s
