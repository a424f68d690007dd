"""Prediction and feedback logs on object storage, for accuracy in production.

A sampled fraction of predictions (``QUAKESTACK_INFERENCE_LOG_SAMPLE_RATE``) and every feedback are
buffered in memory and written as JSON lines to ``inference-logs/<date>/<hour>-<process>-<n>.jsonl``:
objects are immutable, so each flush writes a new one (periodically and at shutdown). Joining the two
on ``request_id`` gives predicted versus true values.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import socket
import threading
from typing import Any

import structlog

from quakestack.layout import INFERENCE_LOGS_PREFIX, log_batch_key
from quakestack.protoconv import utc_now_iso
from quakestack.storage import ObjectStore

log = structlog.get_logger()


class InferenceLog:
    """Buffered JSONL writer; ``flush`` is safe to call from any thread."""

    def __init__(self, store: ObjectStore, sample_rate: float, *, interval_s: float = 2.0,
                 max_buffer: int = 10_000, prefix: str = INFERENCE_LOGS_PREFIX):
        self.store = store
        self.prefix = prefix
        self.sample_rate = sample_rate
        self.interval_s = interval_s
        self.max_buffer = max_buffer
        self.process = f"{socket.gethostname()}-{os.getpid()}"
        self._lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=prefix.strip("/"), daemon=True)
        self._thread.start()

    def sampled(self) -> bool:
        return self.sample_rate > 0 and random.random() < self.sample_rate

    def record(self, kind: str, **fields: Any) -> None:
        line = {"kind": kind, "time": utc_now_iso(), **fields}
        with self._lock:
            if len(self._lines) < self.max_buffer:
                self._lines.append(line)

    def flush(self) -> str | None:
        """Write what is buffered as one object; returns its key (None when there was nothing)."""
        with self._flush_lock:
            with self._lock:
                lines, self._lines = self._lines, []
            if not lines:
                return None
            now = dt.datetime.now(dt.timezone.utc)
            self._seq += 1
            key = log_batch_key(self.prefix, now, self.process, self._seq)
            body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()
            try:
                self.store.put_bytes(key, body, content_type="application/x-ndjson")
            except Exception as exc:  # noqa: BLE001 - storage down: keep the lines for the next flush
                with self._lock:
                    self._lines[:0] = lines[: self.max_buffer]
                log.warning("jsonl log flush failed", prefix=self.prefix, error=str(exc), lines=len(lines))
                return None
            return key

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()
