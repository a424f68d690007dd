"""Annotation jobs on the job runtime: the spec built and validated once at creation, and the user's commands.

Everything a worker needs is resolved here, before the job is accepted: the archive is indexed and
planned into station-days (unknown patterns, inverted ranges, stations without coordinates are refused),
the models are resolved to a registry name and version and checked for their task, and the association
parameters are validated. The worker takes the spec as-is (nothing is re-resolved downstream).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

from quakestack.archive.inventory import read_inventory
from quakestack.archive.plan import plan_station_days
from quakestack.archive.selection import Selection
from quakestack.archive.source import Archive
from quakestack.catalog.associate import association_parameters, require_pyocto
from quakestack.catalog.pipeline import ANNOTATING_TASKS
from quakestack.config import Settings
from quakestack.devices import check_gpus
from quakestack.errors import FailedPrecondition, InvalidArgument
from quakestack.inference.quality import InputPolicy
from quakestack.jobs import fanout
from quakestack.jobs.executor import Executor, check_reachable_by_workers, make_executor, worker_env
from quakestack.jobs.scheduler import Scheduler, SchedulerConfig
from quakestack.jobs.spec import JobRecord, new_job_id
from quakestack.jobs.state import JobState
from quakestack.metadata.database import Database
from quakestack.metadata.jobs import JobStore, JobView
from quakestack.model_store import ModelStore
from quakestack.paths import allowed_local_path
from quakestack.protoconv import utc_now_iso
from quakestack.storage import ObjectStore, validate_key

KIND = "annotation"
SPEC_VERSION = 1
SLOTS = 4  # worker processes of annotation jobs this service runs at once (a job takes min(workers, SLOTS))
DEFAULT_MARGIN_S = 60.0
DEFAULT_THRESHOLD = 0.3
EARLIEST, LATEST = -2208988800.0, 7258118400.0  # 1900-01-01 and 2200-01-01, POSIX seconds
MAX_RANGE_S = 3660 * 86400.0  # ten years of station-days in one job.json


# -- where the data and the inventory are -----------------------------------------------------------
def open_archive(store: ObjectStore, settings: Settings, archive: dict[str, Any]) -> Archive:
    """The archive a spec names: {"sds_prefix"}, {"sds_local_path"} or {"object_keys"}."""
    if archive.get("sds_prefix"):
        return Archive.object_sds(store, archive["sds_prefix"])
    if archive.get("sds_local_path"):
        return Archive.local_sds(archive["sds_local_path"], settings.data_allowed_dirs)
    if archive.get("object_keys"):
        return Archive.objects(store, list(archive["object_keys"]))
    raise InvalidArgument("archive: give sds_prefix, sds_local_path or miniseed_objects with object keys")


def open_inventory(store: ObjectStore, settings: Settings, inventory: dict[str, Any]):
    """The StationXML inventory a spec names: {"object_key"} or {"local_path"} (allow-listed)."""
    if inventory.get("local_path"):
        path = allowed_local_path(inventory["local_path"], settings.data_allowed_dirs, "inventory.local_path",
                                  kind="file")
        return read_inventory(path=path)
    if inventory.get("object_key"):
        return read_inventory(store=store, key=validate_key(inventory["object_key"]))
    raise InvalidArgument("inventory is required: a StationXML object key or local path gives station coordinates")


# -- models -----------------------------------------------------------------------------------------
ROLES = {"picker": ANNOTATING_TASKS, "magnitude_model": ("magnitude",), "classifier": ("classification",)}


def resolve_model(model_store: ModelStore, role: str, name: str, version: str) -> dict[str, Any] | None:
    """A registered model pinned to its version, refused when its task cannot play the role."""
    if not name:
        if role == "picker":
            raise InvalidArgument("picker is required: the registered name (and version) of a picking model")
        return None
    card = model_store.get(name, version)
    task = str(card.get("task", ""))
    if task not in ROLES[role]:
        if role == "picker":
            raise InvalidArgument(f"picker {name} v{card['version']} is a {task} model: it cannot pick or detect; "
                                  "annotation needs a picker (pass magnitude models as magnitude_model)")
        raise InvalidArgument(f"{role} {name} v{card['version']} is a {task} model, not a {ROLES[role][0]} model")
    if role == "picker" and task != "picking":
        raise FailedPrecondition(f"picker {name} v{card['version']} is a {task} model: catalogs are associated "
                                 "from P and S picks, use a picker (phasenet or a SeisBench picker)")
    return {"name": card["name"], "version": int(card["version"]), "architecture": card["architecture"],
            "task": task, "weights_sha256": card.get("weights_sha256", "")}


def classifies_events() -> bool:
    """Whether build_catalog takes an event classifier (the keyword s3-catalog's branch adds)."""
    import inspect

    from quakestack.catalog.pipeline import build_catalog

    return "classifier_model" in inspect.signature(build_catalog).parameters


def model_label(ref: dict[str, Any] | None) -> str:
    return f"{ref['name']}:{ref['version']}" if ref else ""


# -- the spec ---------------------------------------------------------------------------------------
def build_spec(store: ObjectStore, model_store: ModelStore, settings: Settings, *, archive: dict[str, Any],
               inventory: dict[str, Any], selection: dict[str, str], start: float, end: float, picker: tuple[str, str],
               magnitude_model: tuple[str, str] = ("", ""), classifier: tuple[str, str] = ("", ""),
               parameters: dict[str, Any] | None = None, margin_s: float = 0.0, pick_threshold: float = 0.0,
               workers: int = 0, device: str = "", remove_response: bool = False, display_name: str = "",
               gpu_count: int = 0, input_policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """The annotation spec, resolved and validated once: every bad input is refused here, before any work."""
    require_pyocto()
    policy = InputPolicy.of(**(input_policy or {}))
    margin_s = DEFAULT_MARGIN_S if not margin_s else float(margin_s)
    threshold = DEFAULT_THRESHOLD if not pick_threshold else float(pick_threshold)
    if not 0.0 < threshold < 1.0:
        raise InvalidArgument(f"pick_threshold must be in (0, 1), got {pick_threshold:g}")
    workers = fanout.requested_workers(workers)
    if not start or not end:
        raise InvalidArgument("start_time and end_time are required")
    for name, value in (("start_time", start), ("end_time", end)):
        if not (math.isfinite(value) and EARLIEST <= value <= LATEST):
            raise InvalidArgument(f"{name} must lie between 1900 and 2200")
    if end - start > MAX_RANGE_S:
        raise InvalidArgument(f"the time range spans {(end - start) / 86400:.0f} days; at most "
                              f"{MAX_RANGE_S / 86400:.0f} per job (split longer ranges over several jobs)")
    device = check_gpus(device or settings.device, gpu_count)
    try:
        params = association_parameters(parameters or {})
    except (TypeError, ValueError) as exc:  # a value of the wrong JSON type
        raise InvalidArgument(f"association_parameters: {exc}") from None
    sel = Selection(**{k: (v or "*") for k, v in selection.items()})
    models = {"picker": resolve_model(model_store, "picker", *picker),
              "magnitude_model": resolve_model(model_store, "magnitude_model", *magnitude_model),
              "classifier": resolve_model(model_store, "classifier", *classifier)}
    if models["classifier"] is not None and not classifies_events():
        raise FailedPrecondition("this build cannot classify events yet (build_catalog has no classifier_model)")
    check_reachable_by_workers(settings, {"archive.sds_local_path": archive.get("sds_local_path", ""),
                                          "inventory.local_path": inventory.get("local_path", "")})
    archive_index = open_archive(store, settings, archive)
    inv = open_inventory(store, settings, inventory)
    plan = plan_station_days(archive_index, sel, start, end, margin_s=margin_s, inventory=inv)
    return {"archive": archive, "inventory": inventory, "selection": dataclasses.asdict(sel), "start": float(start),
            "end": float(end), "margin_s": margin_s, "pick_threshold": threshold, "workers": workers,
            "device": device, "remove_response": bool(remove_response), "display_name": display_name,
            "input_policy": dataclasses.asdict(policy),
            "association_parameters": params, **models,
            "tasks": [dataclasses.asdict(t) for t in plan.tasks], "missing": list(plan.missing),
            "stations": {k: dataclasses.asdict(v) for k, v in plan.stations.items()}}


def job_record(view: JobView) -> dict[str, Any]:
    """The flat view a servicer converts: spec, folded status and the latest progress."""
    spec, status = view.record.spec, view.status
    progress = dict(status.get("progress") or {})
    progress.setdefault("station_days_total", len(spec["tasks"]))
    if view.state is JobState.QUEUED:
        progress.setdefault("stage", "queued")
    return {"job_id": view.job_id, "state": status["state"], "error": status.get("error", ""),
            "create_time": view.record.create_time, "update_time": status.get("update_time"),
            "display_name": spec.get("display_name", ""), "missing_station_days": spec.get("missing", []),
            "picker": model_label(spec.get("picker")), "magnitude_model": model_label(spec.get("magnitude_model")),
            "classifier": model_label(spec.get("classifier")), "progress": progress}


class AnnotationJobs:
    """The annotation jobs of a service: create (validated), get, list, watch, cancel; a scheduler runs them."""

    def __init__(self, store: ObjectStore, db: Database, settings: Settings, *, gpu_count: int | None = None,
                 executor: Executor | None = None):
        self.store = store
        self.model_store = ModelStore(store, db)
        self.settings = settings
        self._gpu_count = gpu_count
        self.scheduler = Scheduler(
            JobStore(db), executor or make_executor(settings),
            SchedulerConfig(kind=KIND, capacity=SLOTS, lease_ttl_s=settings.jobs_lease_ttl_s,
                            lost_after_s=settings.jobs_lost_after_s, max_retries=settings.jobs_max_retries),
            worker_env=lambda view, slots: worker_env(settings),
            slots_needed=lambda v: min(SLOTS, int(v.record.spec["workers"])))

    def start(self) -> None:
        self.scheduler.start()

    def gpu_count(self) -> int:
        """GPUs of this machine, asked of torch on first need (the data service starts without importing it)."""
        if self._gpu_count is None:
            import torch

            self._gpu_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return self._gpu_count

    def shutdown(self) -> None:
        self.scheduler.shutdown()

    def create(self, **request: Any) -> JobView:
        """Queue a job owned by the caller's token; that token's queued-jobs quota is checked first."""
        owner = self.scheduler.caller_within_quota()
        spec = {**build_spec(self.store, self.model_store, self.settings, gpu_count=self.gpu_count(), **request),
                "owner": owner}
        record = JobRecord(kind=KIND, version=SPEC_VERSION, job_id=new_job_id(), create_time=utc_now_iso(), spec=spec)
        return self.scheduler.create(record, {})

    def get(self, job_id: str) -> JobView:
        return self.scheduler.get(job_id)

    def cancel(self, job_id: str) -> JobView:
        return self.scheduler.cancel(job_id)

    def watch(self, job_id: str, is_active=lambda: True) -> Iterator[JobView]:
        return self.scheduler.watch(job_id, is_active)

    def succeeded(self, job_id: str) -> JobView:
        view = self.get(job_id)
        if view.state is not JobState.SUCCEEDED:
            raise FailedPrecondition(f"annotation job {job_id} is {view.state.value}: its catalog exists once it "
                                     "has SUCCEEDED")
        return view
