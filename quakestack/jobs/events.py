"""The append-only event log of a job: one object per event, `events/<sequence>.json`.

S3 objects cannot be appended to, and rewriting a history per event costs O(n). One object per
event, created with `If-None-Match: *`, makes event N cost one PUT, lets several writers (worker and
scheduler) append without a lock (the loser of a sequence number takes the next one), and lets any
number of readers follow with their own cursor (a LIST after the last key they saw).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from quakestack.errors import Conflict, Unavailable
from quakestack.layout import event_key, events_prefix
from quakestack.protoconv import utc_now_iso
from quakestack.storage import ObjectStore


class EventLog:
    """Appends and reads the events of one job."""

    def __init__(self, store: ObjectStore, job_id: str):
        self.store = store
        self.job_id = job_id
        self._next: int | None = None

    def last_sequence(self) -> int:
        keys = [o.key for o in self.store.list(events_prefix(self.job_id))]
        return int(keys[-1].rsplit("/", 1)[-1].split(".")[0]) if keys else 0

    def append(self, event: dict[str, Any], *, retry_for_s: float = 0.0) -> dict[str, Any]:
        """Store event as the next sequence number; returns it with `sequence` and `time`.

        With retry_for_s, storage outages are waited out (a worker must not lose its events)."""
        return with_retries(lambda: self._append_once(event), retry_for_s)

    def _append_once(self, event: dict[str, Any]) -> dict[str, Any]:
        if self._next is None:
            self._next = self.last_sequence() + 1
        while True:
            entry = {"sequence": self._next, "time": utc_now_iso(), **event}
            try:
                self.store.put_if(event_key(self.job_id, self._next), json.dumps(entry, default=jsonable).encode())
            except Conflict:
                self._next = self.last_sequence() + 1  # another writer took it: append after the tail
                continue
            self._next += 1
            return entry

    def read(self, after: int = 0) -> list[dict[str, Any]]:
        """Every event with a sequence above `after`, in order."""
        start = event_key(self.job_id, after) if after else None
        infos = self.store.list(events_prefix(self.job_id), start_after=start)
        return [json.loads(self.store.get_bytes(info.key)) for info in infos]


def jsonable(value: Any) -> Any:
    """numpy scalars and arrays as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def with_retries(fn: Callable[[], Any], retry_for_s: float) -> Any:
    """Call fn, waiting out storage outages for up to retry_for_s."""
    deadline = time.monotonic() + retry_for_s
    delay = 0.2
    while True:
        try:
            return fn()
        except Unavailable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
