"""Where a job's objects live: one prefix per job, one key per record."""

from __future__ import annotations

from quakestack.storage import validate_key

JOBS_PREFIX = "jobs/"
SEQ_DIGITS = 10


def job_prefix(job_id: str) -> str:
    return validate_key(f"{JOBS_PREFIX}{job_id}/")


def job_key(job_id: str, name: str) -> str:
    return validate_key(f"{JOBS_PREFIX}{job_id}/{name}")


def spec_key(job_id: str) -> str:
    return job_key(job_id, "job.json")


def control_key(job_id: str) -> str:
    return job_key(job_id, "control.json")


def heartbeat_key(job_id: str) -> str:
    return job_key(job_id, "heartbeat.json")


def lease_key(job_id: str) -> str:
    return job_key(job_id, "lease.json")


def events_prefix(job_id: str) -> str:
    return job_key(job_id, "events/")


def event_key(job_id: str, sequence: int) -> str:
    return job_key(job_id, f"events/{sequence:0{SEQ_DIGITS}d}.json")


def checkpoint_key(job_id: str, label: str) -> str:
    return job_key(job_id, f"checkpoints/{label}.pt")
