"""Jobs written by an older version (a mutable `job.json` with the state in it, the history in
`metrics.jsonl`) become runtime jobs when a scheduler of their kind first discovers them.

The migration writes what the runtime reads, each piece by a conditional write so that it is
idempotent and safe under any number of replicas doing it at once: a copy of the old record
(`job.v0.json`), the event log (event N at sequence N, `If-None-Match: *`: a replica that lost the
race finds the same event there), the control record, and last the runtime record over the old
`job.json` with `If-Match` on the etag read (one replica wins; the others read the winner's). A
migration cut short is simply done again. `metrics.jsonl` and the checkpoints are left as they are.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import structlog

from quakestack.errors import Conflict, NotFound
from quakestack.jobs.control import create_control
from quakestack.jobs.events import jsonable
from quakestack.jobs.spec import JobRecord
from quakestack.layout import event_key, legacy_history_key, legacy_record_key, spec_key
from quakestack.storage import ObjectStore

log = structlog.get_logger()

Migrated = tuple[JobRecord, list[dict[str, Any]], dict[str, Any]]  # runtime record, its events in order, control
Converter = Callable[[dict[str, Any], list[dict[str, Any]]], Migrated | None]  # old record, old history


def legacy_history(store: ObjectStore, job_id: str) -> list[dict[str, Any]]:
    """The old `metrics.jsonl` (one JSON event a line); a torn last line (a crash mid-rewrite) is dropped."""
    try:
        text = store.get_bytes(legacy_history_key(job_id)).decode()
    except NotFound:
        return []
    events = []
    for line in text.splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            if line.strip():
                events.append(json.loads(line))
    return events


def migrate_legacy_job(store: ObjectStore, job_id: str, convert: Converter) -> JobRecord | None:
    """The job's runtime record, migrating an old-format job first; None when it cannot be (not ours)."""
    raw, etag = store.get_with_etag(spec_key(job_id))
    try:
        old = json.loads(raw)
    except ValueError:
        return None
    if isinstance(old, dict) and "spec" in old:
        return JobRecord.from_dict(old)  # migrated already (by another replica)
    converted = convert(old, legacy_history(store, job_id)) if isinstance(old, dict) else None
    if converted is None:
        return None
    record, events, control = converted
    _create(store, legacy_record_key(job_id), raw)
    for sequence, event in enumerate(events, start=1):
        _create(store, event_key(job_id, sequence),
                json.dumps({**event, "sequence": sequence}, default=jsonable).encode())
    with contextlib.suppress(Conflict):
        create_control(store, job_id, **control)
    try:
        store.put_if(spec_key(job_id), json.dumps(record.to_dict(), sort_keys=True, indent=1).encode(), etag=etag)
    except Conflict:
        current = store.get_json(spec_key(job_id))
        return JobRecord.from_dict(current) if isinstance(current, dict) and "spec" in current else None
    log.info("job migrated from the older format", job_id=job_id, kind=record.kind, events=len(events))
    return record


def _create(store: ObjectStore, key: str, data: bytes) -> None:
    with contextlib.suppress(Conflict):
        store.put_if(key, data)
