"""The data service's dataset job summaries (quakestack.data.jobs.summary) as protobuf."""

from __future__ import annotations

from typing import Any

from quakestack.protoconv import timestamp_from_iso
from quakestack.v1 import common_pb2, data_pb2


def dataset_job(summary: dict[str, Any]) -> data_pb2.DatasetJob:
    progress = data_pb2.DatasetJobProgress(**summary["progress"])
    job = data_pb2.DatasetJob(
        job_id=summary["job_id"], dataset=summary["dataset"],
        state=common_pb2.JobState.Value(f"JOB_STATE_{summary['state']}"), progress=progress,
        skipped={k: int(v) for k, v in summary["skipped"].items()}, warnings=summary["warnings"],
        error=summary["error"], create_time=timestamp_from_iso(summary["create_time"]))
    if summary.get("end_time"):
        job.end_time.CopyFrom(timestamp_from_iso(summary["end_time"]))
    return job
