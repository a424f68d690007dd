"""Dataset (ingestion) jobs on the job runtime: the spec built once at creation, and the user's commands.

A dataset job is a runtime job of kind "dataset": its spec (the dataset name, the validated
parameters and each source's resolved files) is written once by the data service that accepted
it; its worker (quakestack.data.worker) renders the shards, writes the manifest and publishes the
dataset in the catalog, reporting only through the job's event log. Any replica of the data service
answers for any job; one holds its lease and supervises its worker.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

from quakestack import metrics
from quakestack.config import Settings
from quakestack.data import FilterSpec, PreprocessSpec, SplitSpec, WindowSpec, readers
from quakestack.errors import InvalidArgument, NotFound
from quakestack.jobs import fanout
from quakestack.jobs.executor import Executor, check_reachable_by_workers, make_executor, worker_env
from quakestack.jobs.scheduler import Scheduler, SchedulerConfig
from quakestack.jobs.spec import JobRecord, new_job_id
from quakestack.jobs.status import apply_event
from quakestack.metadata.database import Database
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.metadata.jobs import JobStore, JobView
from quakestack.protoconv import utc_now_iso
from quakestack.storage import ObjectStore, validate_name

KIND = "dataset"
SPEC_VERSION = 1
MAX_RUNNING = 2  # jobs rendering at once on one replica; each renders with data_workers processes
CANCEL_WAIT_S = 15.0
CLAIM_GRACE_S = 30.0  # a dataset claim whose job record never appeared is stale after this
TICK_S = 0.2  # how often this replica supervises: a dataset job lasts seconds
PROGRESS_FIELDS = ("phase", "items_done", "items_total", "windows_written", "bytes_written", "windows_per_s", "eta_s",
                   "windows_gap_filled")
_PARAMETER_TYPES = {"window": WindowSpec, "preprocess": PreprocessSpec, "filters": FilterSpec, "split": SplitSpec}


def parameters_json(parameters: dict[str, Any]) -> dict[str, Any]:
    """The request's parameters (dataclasses and plain values) as JSON for the spec."""
    return {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in parameters.items()}


def spec_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """A spec's parameters as DatasetSpec keyword arguments (the worker's view of them)."""
    out = dict(parameters)
    for name, cls in _PARAMETER_TYPES.items():
        if name in out:
            value = dict(out[name])
            if name == "window" and value.get("p_offset_range_s") is not None:
                value["p_offset_range_s"] = tuple(value["p_offset_range_s"])
            out[name] = cls(**value)
    return out


def build_spec(*, dataset: str, parameters: dict[str, Any], sources: list[dict[str, Any]],
               workers: int = 0) -> dict[str, Any]:
    """The dataset spec, validated once: the worker takes it as-is."""
    validate_name(dataset, "dataset name")
    workers = fanout.requested_workers(workers)
    if not sources:
        raise InvalidArgument("a dataset needs at least one source")
    for source in sources:
        readers.get_reader(source["format"])
    params = parameters_json(parameters)
    try:
        spec_parameters(params)  # what the worker will build must build
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(str(exc)) from None
    return {"dataset": dataset, "parameters": params, "sources": sources, "workers": workers}


def summary(view: JobView) -> dict[str, Any]:
    """The flat view the servicer converts: state, the latest progress, skips, warnings, times."""
    status = view.status
    progress = status.get("progress") or {}
    warnings = status.get("warnings") or []
    end = status.get("end_time") if view.terminal else None
    shown = {k: progress.get(k, 0) for k in PROGRESS_FIELDS} | {"phase": progress.get("phase", "queued")}
    return {"job_id": view.job_id, "dataset": view.record.spec["dataset"], "state": status["state"],
            "progress": shown, "skipped": dict(progress.get("skipped") or {}), "warnings": list(warnings),
            "error": status.get("error", ""), "create_time": view.record.create_time, "end_time": end}


class DatasetJobs:
    def __init__(self, store: ObjectStore, db: Database, settings: Settings, *, executor: Executor | None = None):
        readers.registry()  # a plugin that cannot load stops the start, naming it, not the first request
        self.store = store
        self.settings = settings
        self.catalog = DatasetCatalog(db)
        self.scheduler = Scheduler(
            JobStore(db), executor or make_executor(settings),
            SchedulerConfig(kind=KIND, capacity=MAX_RUNNING, lease_ttl_s=settings.jobs_lease_ttl_s,
                            lost_after_s=settings.jobs_lost_after_s, max_retries=settings.jobs_max_retries,
                            tick_s=TICK_S),
            worker_env=lambda view, slots: worker_env(settings), on_event=_count,
            slots_needed=lambda v: min(MAX_RUNNING, int(v.record.spec.get("workers", 1))))

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown()

    # -- requests -----------------------------------------------------------------------------
    def create(self, spec: dict[str, Any]) -> JobView:
        """Queue a job owned by the caller's token (quota checked); refuse a dataset that exists or is being written."""
        owner = self.scheduler.caller_within_quota()
        check_reachable_by_workers(self.settings, {
            f"sources[{i}].{part}": source[part]["local_root"] for i, source in enumerate(spec["sources"])
            for part in ("waveforms", "catalog") if source.get(part)})
        job_id = new_job_id("ds-")
        self.catalog.claim(spec["dataset"], job_id, self._unfinished)
        record = JobRecord(kind=KIND, version=SPEC_VERSION, job_id=job_id, create_time=utc_now_iso(),
                           spec={**spec, "owner": owner})
        return self.scheduler.create(record, {})

    def _unfinished(self, job_id: str, claimed_at: float) -> bool:
        """Whether a claim's job may still write: it has not ended, or its record is not there yet and the
        claim is younger than CLAIM_GRACE_S (the other replica is between claim and record, milliseconds;
        later, it died there). Replicas' clocks must agree within that, as for leases."""
        view = self.scheduler.jobs.find(job_id)
        if view is None:
            return time.time() - claimed_at < CLAIM_GRACE_S
        return not view.terminal

    def get(self, job_id: str) -> JobView:
        validate_name(job_id, "job id")
        try:
            return self.scheduler.get(job_id)
        except NotFound:
            raise NotFound(f"dataset job {job_id!r} not found") from None

    def writer_of(self, dataset: str) -> str | None:
        """The id of an unfinished job writing `dataset` (not yet published), if any."""
        job_id = self.catalog.writer(dataset)
        return job_id if job_id is not None and self._unfinished(job_id, time.time()) else None

    def cancel(self, job_id: str) -> JobView:
        """The worker ends the job CANCELLED (finished shards stay, no manifest); waits for the end."""
        self.get(job_id)  # NOT_FOUND in this kind's words
        view = self.scheduler.cancel(job_id)
        deadline = time.monotonic() + CANCEL_WAIT_S
        for _ in self.scheduler.subscribe(job_id, lambda: time.monotonic() < deadline,
                                          after=int(view.status["last_sequence"])):
            pass
        return self.get(job_id)

    def watch(self, job_id: str, is_active: Callable[[], bool] = lambda: True) -> Iterator[dict[str, Any]]:
        """The current summary, then one after every change, until the job ends."""
        view = self.get(job_id)
        yield summary(view)
        status = copy.deepcopy(view.status)  # the status as stored, folded forward one event at a time
        for event in self.scheduler.subscribe(job_id, is_active, after=int(status["last_sequence"])):
            if apply_event(status, event):
                yield summary(dataclasses.replace(view, status=status))


def _count(view: JobView, event: dict[str, Any]) -> None:
    """Prometheus figures from the events as every replica sees them."""
    shard = event.get("shard") if event.get("type") == "progress" else None
    if shard and not shard.get("reused"):
        metrics.WINDOWS_WRITTEN.inc(int(shard.get("count", 0)))
        for reason, n in (shard.get("skipped") or {}).items():
            metrics.ITEMS_SKIPPED.labels(reason).inc(int(n))
        metrics.BYTES_STORED.labels("shard").inc(sum(int(v) for v in (shard.get("sizes") or {}).values()))
    if event.get("type") == "state" and event.get("elapsed_s") is not None:
        metrics.INGEST_JOB_SECONDS.labels(event["state"].lower()).observe(float(event["elapsed_s"]))
