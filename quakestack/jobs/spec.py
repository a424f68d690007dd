"""The durable record of a job: `job.json`, written once at creation and never rewritten.

It carries the kind, the spec's schema version and the spec itself, built and validated once by the
service that accepted the job; the worker takes it as-is (nothing is re-resolved downstream).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from typing import Any

from quakestack.errors import FailedPrecondition, NotFound
from quakestack.layout import spec_key
from quakestack.storage import ObjectStore


def new_job_id(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True)
class JobRecord:
    kind: str
    version: int
    job_id: str
    create_time: str
    spec: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any], kinds: dict[str, int] | None = None) -> JobRecord:
        record = cls(kind=value["kind"], version=int(value["version"]), job_id=value["job_id"],
                     create_time=value["create_time"], spec=dict(value["spec"]))
        if kinds is not None and record.kind in kinds and record.version > kinds[record.kind]:
            raise FailedPrecondition(f"job {record.job_id}: {record.kind} spec version {record.version} is newer "
                                     f"than this build understands ({kinds[record.kind]})")
        return record


def write_record(store: ObjectStore, record: JobRecord) -> None:
    """Create job.json (never overwrite one: job ids are unique, and a record is immutable)."""
    store.put_if(spec_key(record.job_id), json.dumps(record.to_dict(), sort_keys=True, indent=1).encode())


def read_record(store: ObjectStore, job_id: str) -> JobRecord:
    value = store.get_json(spec_key(job_id))
    if not isinstance(value, dict) or "spec" not in value:
        raise NotFound(f"job {job_id!r} has no runtime record (written by an older version: a scheduler of its "
                       "kind migrates it when it discovers it)")
    return JobRecord.from_dict(value)

