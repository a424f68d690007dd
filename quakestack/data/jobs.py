"""Dataset (ingestion) jobs on the job runtime: the spec built once at creation, and the user's commands.

A dataset job is a runtime job of kind "dataset": its spec (the dataset name, the validated
parameters and each source's resolved files) is written once by the data service that accepted
it; its worker (quakestack.data.worker) renders the shards and writes the manifest, reporting only
through the job's event log. Every replica of the data service follows every job's log; one holds
its lease and supervises its worker.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from quakestack import metrics
from quakestack.config import Settings
from quakestack.data import FilterSpec, PreprocessSpec, SplitSpec, WindowSpec, readers
from quakestack.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument, NotFound
from quakestack.jobs import fanout
from quakestack.jobs.executor import Executor, check_reachable_by_workers, make_executor
from quakestack.jobs.scheduler import JobView, Scheduler, SchedulerConfig
from quakestack.jobs.spec import JobRecord, new_job_id
from quakestack.jobs.state import TERMINAL, JobState
from quakestack.jobs.status import apply_event
from quakestack.layout import dataset_writer_key, manifest_key
from quakestack.protoconv import utc_now_iso
from quakestack.stack import settings_env
from quakestack.storage import ObjectStore, validate_name

KIND = "dataset"
SPEC_VERSION = 1
MAX_RUNNING = 2  # jobs rendering at once on one replica; each renders with data_workers processes
CANCEL_WAIT_S = 15.0
CLAIM_GRACE_S = 30.0  # a dataset claim whose job record never appeared is stale after this
TICK_S = 0.2  # how often this replica reads its jobs' logs: a dataset job lasts seconds, watchers see it live
PROGRESS_FIELDS = ("phase", "items_done", "items_total", "windows_written", "bytes_written", "windows_per_s", "eta_s")
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
    warnings = next((e["warnings"] for e in reversed(view.events) if e.get("type") == "progress" and "warnings" in e),
                    [])
    end = next((e.get("time") for e in reversed(view.events) if e.get("type") == "state"
                and JobState(e["state"]) in TERMINAL), None) if view.terminal else None
    shown = {k: progress.get(k, 0) for k in PROGRESS_FIELDS} | {"phase": progress.get("phase", "queued")}
    return {"job_id": view.job_id, "dataset": view.record.spec["dataset"], "state": status["state"],
            "progress": shown, "skipped": dict(progress.get("skipped") or {}), "warnings": list(warnings),
            "error": status.get("error", ""), "create_time": view.record.create_time, "end_time": end}


class DatasetJobs:
    def __init__(self, store: ObjectStore, settings: Settings, *, executor: Executor | None = None):
        readers.registry()  # a plugin that cannot load stops the start, naming it, not the first request
        self.store = store
        self.settings = settings
        self.scheduler = Scheduler(
            store, executor or make_executor(settings),
            SchedulerConfig(kind=KIND, capacity=MAX_RUNNING, lease_ttl_s=settings.jobs_lease_ttl_s,
                            lost_after_s=settings.jobs_lost_after_s, max_retries=settings.jobs_max_retries,
                            tick_s=TICK_S),
            worker_env=self._worker_env, on_event=_count,
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
        dataset = spec["dataset"]
        if self.store.exists(manifest_key(dataset)):
            raise AlreadyExists(f"dataset {dataset!r} already exists")
        job_id = new_job_id("ds-")
        self._claim(dataset, job_id)
        if self.store.exists(manifest_key(dataset)):  # published between the first check and the claim
            raise AlreadyExists(f"dataset {dataset!r} already exists")
        record = JobRecord(kind=KIND, version=SPEC_VERSION, job_id=job_id, create_time=utc_now_iso(),
                           spec={**spec, "owner": owner})
        return self.scheduler.create(record, {})

    def _claim(self, dataset: str, job_id: str) -> None:
        """Make `job_id` the dataset's only writer, by a conditional write: ALREADY_EXISTS while another job
        that has not ended holds it. A claim of an ended job (failed, cancelled) or of a job whose record
        never got written (its service died in between) is taken over, again conditionally."""
        key = dataset_writer_key(dataset)
        body = json.dumps({"job_id": job_id, "time": time.time()}).encode()
        with contextlib.suppress(Conflict):  # free: ours at once
            self.store.put_if(key, body)
            return
        try:
            raw, etag = self.store.get_with_etag(key)
        except NotFound:  # deleted with its dataset meanwhile
            raw, etag = b"{}", None
        claim = json.loads(raw)
        if claim.get("job_id") and self._unfinished(claim["job_id"], float(claim.get("time", 0.0))):
            raise AlreadyExists(f"dataset {dataset!r} is being written by job {claim['job_id']}")
        try:
            self.store.put_if(key, body, etag=etag)
        except Conflict:
            raise AlreadyExists(f"dataset {dataset!r} is being written by another job, created just now") from None

    def _unfinished(self, job_id: str, claimed_at: float) -> bool:
        """Whether the claim's job may still write: it has not ended, or its record is not there yet and the
        claim is younger than CLAIM_GRACE_S (the other replica is between claim and record, milliseconds;
        later, it died there). Replicas' clocks must agree within that, as for leases."""
        try:
            return not self.get(job_id).terminal
        except NotFound:
            return time.time() - claimed_at < CLAIM_GRACE_S

    def get(self, job_id: str) -> JobView:
        validate_name(job_id, "job id")
        try:
            return self.scheduler.get(job_id)
        except NotFound:
            raise NotFound(f"dataset job {job_id!r} not found") from None

    def list(self) -> list[JobView]:
        return self.scheduler.list()

    def writer_of(self, dataset: str, views: list[JobView] | None = None) -> str | None:
        """The id of an unfinished job writing `dataset`, if any."""
        for view in views if views is not None else self.list():
            if view.record.spec["dataset"] == dataset and not view.terminal:
                return view.job_id
        return None

    def cancel(self, job_id: str) -> JobView:
        """The worker ends the job CANCELLED (finished shards stay, no manifest); waits for the end."""
        view = self.get(job_id)
        if view.terminal:
            raise FailedPrecondition(f"dataset job {job_id} already ended ({view.state.value})")
        self.scheduler.update_control(view, cancel=True)
        if view.state is JobState.QUEUED:  # a worker starting meanwhile sees the flag and leaves
            self.scheduler.append(view, {"type": "state", "state": JobState.CANCELLED.value, "message": "cancelled"})
        deadline = time.monotonic() + CANCEL_WAIT_S
        for _ in self.scheduler.subscribe(job_id, lambda: time.monotonic() < deadline):
            pass
        return view

    def watch(self, job_id: str, is_active: Callable[[], bool] = lambda: True) -> Iterator[dict[str, Any]]:
        """The current summary, then one after every change, until the job ends."""
        view = self.get(job_id)
        with view.cond:  # status and events change together under it
            shadow = JobView(record=view.record, status=copy.deepcopy(view.status), events=list(view.events))
        yield summary(shadow)
        for index, event in enumerate(self.scheduler.subscribe(job_id, is_active)):
            if index >= len(shadow.events) and apply_event(shadow.status, event):
                shadow.events.append(event)
                yield summary(shadow)

    # -- workers ------------------------------------------------------------------------------
    def _worker_env(self, view: JobView) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
        env.update(settings_env(self.settings))
        env["PYTHONUNBUFFERED"] = "1"
        return env


def _count(view: JobView, event: dict[str, Any]) -> None:
    """Prometheus figures from the events as every replica sees them."""
    shard = event.get("shard") if event.get("type") == "progress" else None
    if shard and not shard.get("reused"):
        metrics.WINDOWS_WRITTEN.labels(view.record.spec["dataset"]).inc(int(shard.get("count", 0)))
        for reason, n in (shard.get("skipped") or {}).items():
            metrics.ITEMS_SKIPPED.labels(reason).inc(int(n))
        metrics.BYTES_STORED.labels("shard").inc(sum(int(v) for v in (shard.get("sizes") or {}).values()))
    if event.get("type") == "state" and event.get("elapsed_s") is not None:
        metrics.INGEST_JOB_SECONDS.labels(event["state"].lower()).observe(float(event["elapsed_s"]))
