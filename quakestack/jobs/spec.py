"""The durable record of a job, written once at creation and never rewritten (its row in the metadata store).

It carries the kind, the spec's schema version and the spec itself, built and validated once by the
service that accepted the job; the worker takes it as-is (nothing is re-resolved downstream).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from quakestack.errors import FailedPrecondition


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


Migrated = tuple[JobRecord, list[dict[str, Any]], dict[str, Any]]  # an older version's job: record, events, control
