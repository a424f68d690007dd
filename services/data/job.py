"""One ingestion job's state: in memory for watchers (condition variable + version), on storage as job.json.

Watchers never get a queue: each keeps the last version it sent and waits on the condition, so any
number of watchers cost the job nothing and a slow watcher just sees fewer, newer states.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format

from quakestack.protoconv import iso_from_seconds, seconds_from_iso, timestamp_from_seconds
from quakestack.v1 import common_pb2, data_pb2

KIND = "dataset"
MAX_WARNINGS = 50
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
_PROGRESS = ("phase", "items_done", "items_total", "windows_written", "bytes_written", "windows_per_s", "eta_s")


class Job:
    """State of one dataset job; every change bumps `version` and wakes the watchers."""

    def __init__(self, job_id: str, request: data_pb2.CreateDatasetRequest, create_time: float | None = None):
        self.job_id = job_id
        self.request = request
        self.dataset = request.name
        self.create_time = create_time or time.time()
        self.end_time: float | None = None
        self.state = QUEUED
        self.phase = "queued"
        self.items_done = 0
        self.items_total = 0
        self.windows_written = 0
        self.bytes_written = 0
        self.windows_per_s = 0.0
        self.eta_s = 0.0
        self.skipped: Counter[str] = Counter()
        self.warnings: list[str] = []
        self.error = ""
        self.results: dict[str, dict[str, Any]] = {}  # shard key -> ShardResult dict (published shards)
        self.version = 0
        self.cond = threading.Condition()
        self.cancel_requested = threading.Event()

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def update(self, **changes: Any) -> None:
        with self.cond:
            for name, value in changes.items():
                setattr(self, name, value)
            self.version += 1
            self.cond.notify_all()

    def finish(self, persist: Callable[[], None], **changes: Any) -> None:
        """Enter an end state, stored before anyone sees it: a caller told CANCELLED finds it in job.json."""
        with self.cond:
            for name, value in changes.items():
                setattr(self, name, value)
            self.end_time = self.end_time or time.time()
            persist()
            self.version += 1
            self.cond.notify_all()

    def add_skipped(self, counts: dict[str, int], examples: list[str]) -> None:
        with self.cond:
            self.skipped.update(counts)
            room = MAX_WARNINGS - len(self.warnings)
            self.warnings.extend(examples[: max(room, 0)])
            self.version += 1
            self.cond.notify_all()

    def wait_change(self, seen: int, timeout_s: float) -> int:
        """Block until the version differs from `seen`, the job ends, or the timeout; returns the version."""
        with self.cond:
            if self.version == seen and not self.terminal:
                self.cond.wait(timeout_s)
            return self.version

    # -- protobuf -----------------------------------------------------------------------------
    def to_proto(self) -> data_pb2.DatasetJob:
        with self.cond:
            progress = data_pb2.DatasetJobProgress(**{k: getattr(self, k) for k in _PROGRESS})
            job = data_pb2.DatasetJob(
                job_id=self.job_id, dataset=self.dataset, state=common_pb2.JobState.Value(f"JOB_STATE_{self.state}"),
                progress=progress, skipped=dict(self.skipped), warnings=list(self.warnings), error=self.error,
                create_time=timestamp_from_seconds(self.create_time),
            )
            if self.end_time is not None:
                job.end_time.CopyFrom(timestamp_from_seconds(self.end_time))
            return job

    # -- job.json -----------------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        with self.cond:
            return {
                "kind": KIND,
                "job_id": self.job_id,
                "dataset": self.dataset,
                "state": self.state,
                "progress": {k: getattr(self, k) for k in _PROGRESS},
                "skipped": dict(sorted(self.skipped.items())),
                "warnings": list(self.warnings),
                "error": self.error,
                "create_time": iso_from_seconds(self.create_time),
                "end_time": iso_from_seconds(self.end_time),
                "request": json_format.MessageToDict(self.request, preserving_proto_field_name=True),
                "results": dict(self.results),
            }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        request = json_format.ParseDict(record.get("request", {}), data_pb2.CreateDatasetRequest())
        job = cls(record["job_id"], request, seconds_from_iso(record.get("create_time")))
        job.state = record.get("state", QUEUED)
        for k, v in record.get("progress", {}).items():
            if k in _PROGRESS:
                setattr(job, k, v)
        job.skipped = Counter(record.get("skipped", {}))
        job.warnings = list(record.get("warnings", []))
        job.error = record.get("error", "")
        job.end_time = seconds_from_iso(record.get("end_time"))
        job.results = dict(record.get("results", {}))
        return job
