"""Heartbeats: a worker proves it is alive by rewriting its heartbeat row; schedulers watch it change.

Staleness is judged on the watcher's own monotonic clock (how long since it last saw the beat
counter move), never by comparing clocks of two machines; time during which the watcher itself
cannot read storage does not count against the worker.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import psutil


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """Enough to recognise this process again from another one (pid reuse included)."""
    proc = psutil.Process(pid or os.getpid())
    return {"host": socket.gethostname(), "pid": proc.pid, "pid_start": proc.create_time()}


def heartbeat_body(job_id: str, attempt: int, beat: int, **extra: Any) -> dict[str, Any]:
    """What a worker's beat says: its attempt and counter, and who it is (executors re-attach by it)."""
    return {"job_id": job_id, "attempt": attempt, "beat": beat, "time": time.time(), **process_identity(), **extra}


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
