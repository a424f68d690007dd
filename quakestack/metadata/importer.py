"""The first start on a bucket written by an older version: its metadata objects become rows, once.

Before the metadata store, jobs lived as `jobs/<id>/job.json` (a runtime record, or an even older
mutable record with `metrics.jsonl`), one object per event, `control.json`; the registry as
`models/<name>/<version>/model.json` and `aliases.json`; datasets as their manifests and `writer.json`;
usage as `usage/<token>.json`. The import reads them all once, under the database's exclusive lock (two
replicas starting together: one imports, the other waits and finds it done), inserts what is not there
yet (a job, version or dataset already present is left as it is, so an import cut short is simply run
again) and records that it finished. Nothing in the bucket is changed or deleted: the objects stay as
the backup they were. A job that was running is put back in the queue and resumes from its last
checkpoint (a STOPPING one is STOPPED), as a restart of the older version would have done.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog

from quakestack.data.manifest import manifest_size, manifest_windows
from quakestack.errors import NotFound, QuakestackError
from quakestack.jobs.spec import JobRecord, Migrated
from quakestack.jobs.state import JobState
from quakestack.jobs.status import fold
from quakestack.layout import (
    DATASETS_PREFIX,
    JOBS_PREFIX,
    MODELS_PREFIX,
    USAGE_PREFIX,
    aliases_key,
    card_key,
    control_key,
    dataset_writer_key,
    events_prefix,
    legacy_history_key,
    manifest_key,
    model_prefix,
    spec_key,
    usage_key,
)
from quakestack.metadata.database import Database, loads
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.metadata.jobs import JobStore
from quakestack.metadata.registry import Registry
from quakestack.metadata.schema import meta
from quakestack.metadata.usage import UsageLedger
from quakestack.storage import ObjectStore

log = structlog.get_logger()
DONE_KEY = "object_storage_import"
READERS = 16  # threads reading a job's objects: the import is bound by S3 round trips, not by CPU
BATCH = 200  # jobs inserted per transaction
IMPORTED = "imported into the metadata store"

Converter = Callable[[dict[str, Any], list[dict[str, Any]]], Migrated | None]  # old record, old history


def _legacy_converters() -> dict[str, Converter]:
    """Kinds whose pre-runtime records can be converted (imported lazily: the training one needs the zoo)."""
    def training(old: dict[str, Any], history: list[dict[str, Any]]) -> Migrated | None:
        from quakestack.training.jobs import legacy_converter

        return legacy_converter(old, history)

    return {"training": training}


@dataclass
class ImportReport:
    jobs: int = 0
    requeued: list[str] = field(default_factory=list)
    models: int = 0
    datasets: int = 0
    usage: int = 0
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "requeued": self.requeued, "model_versions": self.models,
                "datasets": self.datasets, "usage": self.usage, "skipped": self.skipped,
                "seconds": round(self.seconds, 3)}


def imported(db: Database) -> bool:
    with db.read() as conn:
        return conn.execute(sa.select(meta.c.value).where(meta.c.key == DONE_KEY)).first() is not None


def import_object_storage(db: Database, store: ObjectStore) -> ImportReport | None:
    """Import the bucket's older metadata once; None when this database already has it."""
    if imported(db):
        return None
    with db.exclusive():
        if imported(db):  # another replica finished it while we waited
            return None
        started = time.monotonic()
        report = ImportReport()
        _import_jobs(db, store, report)
        _import_models(db, store, report)
        _import_datasets(db, store, report)
        _import_usage(db, store, report)
        report.seconds = time.monotonic() - started
        with db.write() as conn:
            conn.execute(sa.insert(meta).values(key=DONE_KEY, value=json.dumps({**report.to_dict(),
                                                                                  "time": time.time()})))
    if report.jobs or report.models or report.datasets or report.usage:
        log.info("object storage metadata imported", **report.to_dict())
    return report


# -- jobs -------------------------------------------------------------------------------------------
def _import_jobs(db: Database, store: ObjectStore, report: ImportReport) -> None:
    """Every job of the bucket not in the database yet, read by READERS threads (a job is tens of small
    objects) and inserted a batch at a time."""
    jobs = JobStore(db)
    converters = _legacy_converters()
    ids = store.list_dirs(JOBS_PREFIX)
    with ThreadPoolExecutor(READERS, thread_name_prefix="import") as pool:
        for first in range(0, len(ids), BATCH):
            batch = ids[first:first + BATCH]
            known = jobs.many(batch)
            rows = []
            todo = [j for j in batch if j not in known]
            for job_id, outcome in zip(todo, pool.map(lambda j: _read_job(store, j, converters), todo), strict=True):
                if isinstance(outcome, str):
                    report.skipped.append(f"job {job_id}: {outcome}")
                elif outcome is not None:
                    rows.append(outcome)
            if not rows:
                continue
            jobs.create_many(rows)
            report.jobs += len(rows)
            report.requeued += [r.job_id for r, _, events in rows
                                if events and str(events[-1].get("message", "")).startswith(IMPORTED)]


def _read_job(store: ObjectStore, job_id: str,
              converters: dict[str, Converter]) -> tuple[JobRecord, dict[str, Any], list[dict[str, Any]]] | str | None:
    """A job as JobStore.create_many takes it (record, control, events; an unfinished one put back in the
    queue); the reason it cannot be imported; or None when the directory holds no job record."""
    try:
        raw = store.get_json(spec_key(job_id))
    except NotFound:
        return None
    except (QuakestackError, ValueError) as exc:
        return str(exc)
    if not isinstance(raw, dict):
        return "job.json is not an object"
    try:
        migrated = _runtime_job(store, job_id, raw) if "spec" in raw else _legacy_job(store, job_id, raw, converters)
    except (QuakestackError, ValueError, KeyError, TypeError) as exc:
        return str(exc)
    if migrated is None:
        return "a record of no known kind"
    record, events, control = migrated
    return record, control, _resume_unfinished(record, events)


def _runtime_job(store: ObjectStore, job_id: str, raw: dict[str, Any]) -> Migrated:
    record = JobRecord.from_dict(raw)
    events = [store.get_json(info.key) for info in store.list(events_prefix(job_id))]
    events.sort(key=lambda e: int(e.get("sequence", 0)))
    try:
        control = store.get_json(control_key(job_id))
    except NotFound:
        control = {}
    return record, [{k: v for k, v in e.items() if k != "sequence"} for e in events], dict(control)


def _legacy_job(store: ObjectStore, job_id: str, raw: dict[str, Any],
                converters: dict[str, Converter]) -> Migrated | None:
    convert = converters.get(str(raw.get("kind", "")))
    return None if convert is None else convert(raw, legacy_history(store, job_id))


def legacy_history(store: ObjectStore, job_id: str) -> list[dict[str, Any]]:
    """An older version's `metrics.jsonl` (one JSON event a line); a torn last line (a crash) is dropped."""
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


def _resume_unfinished(record: JobRecord, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A job the older version left running goes back to the queue (its next worker resumes from the last
    checkpoint); one left stopping is stopped: what that version's own restart would have done."""
    status, _ = fold(record.create_time, [{**e, "sequence": i} for i, e in enumerate(events, start=1)])
    when = events[-1].get("time", record.create_time) if events else record.create_time
    if status["state"] == JobState.RUNNING.value:
        return [*events, {"type": "state", "state": JobState.QUEUED.value, "time": when,
                          "message": f"{IMPORTED}: resuming from the last checkpoint"}]
    if status["state"] == JobState.STOPPING.value:
        return [*events, {"type": "state", "state": JobState.STOPPED.value, "time": when,
                          "message": f"{IMPORTED}: the older version stopped while the job was stopping"}]
    return events


# -- registry, datasets, usage ----------------------------------------------------------------------
def _import_models(db: Database, store: ObjectStore, report: ImportReport) -> None:
    registry = Registry(db)
    for name in store.list_dirs(MODELS_PREFIX):
        try:
            versions = sorted(int(d) for d in store.list_dirs(model_prefix(name)) if d.isascii() and d.isdigit())
        except QuakestackError as exc:
            report.skipped.append(f"model {name}: {exc}")
            continue
        for version in versions:
            try:
                card = store.get_json(card_key(name, version))
            except NotFound:
                continue  # weights without a card: a registration cut short, never a version
            if registry.import_version(name, version, card):
                report.models += 1
        with contextlib.suppress(NotFound):
            aliases = store.get_json(aliases_key(name))
            registry.import_aliases(name, {str(a): int(v) for a, v in dict(aliases).items()})


def _import_datasets(db: Database, store: ObjectStore, report: ImportReport) -> None:
    catalog = DatasetCatalog(db)
    for name in store.list_dirs(DATASETS_PREFIX):
        try:
            raw = store.get_bytes(manifest_key(name))
        except NotFound:
            with contextlib.suppress(NotFound, ValueError, QuakestackError):
                writer = store.get_json(dataset_writer_key(name))
                catalog.import_claim(name, str(writer.get("job_id", "")), float(writer.get("time", 0.0)))
            continue
        except QuakestackError as exc:
            report.skipped.append(f"dataset {name}: {exc}")
            continue
        manifest = json.loads(raw)
        if catalog.import_published(name, raw, manifest_windows(manifest), manifest_size(manifest)):
            report.datasets += 1


def _import_usage(db: Database, store: ObjectStore, report: ImportReport) -> None:
    ledger = UsageLedger(db)
    for info in store.list(USAGE_PREFIX):
        identity = info.key[len(USAGE_PREFIX):].removesuffix(".json")
        with contextlib.suppress(NotFound, ValueError, KeyError, QuakestackError):
            value = loads(store.get_bytes(usage_key(identity)).decode())
            ledger.set(identity, int(value["stored_bytes"]))
            report.usage += 1
