"""The annotation runner of the job runtime: one attempt of an annotation job, from its spec and the store.

Started as `python -m quakestack.jobs.worker --job-id <id> --attempt <n>` (the local executor, or one pod
of an Indexed Job). Worker ``i`` of ``n`` (quakestack.jobs.fanout) picks station-days ``i::n``; a
station-day whose picks object exists is skipped, so a resumed attempt redoes nothing. Rank 0 reports
(heartbeat, progress events), starts the local peers, then finishes every station-day still missing
(taking them from the end, so a dead or slow peer never stalls the job), associates the picks and
writes the catalog. Peers only write picks objects and leave when the job is cancelled or replaced.
"""

from __future__ import annotations

import os
import time
import traceback
from typing import Any

from quakestack.archive.inventory import StationCoordinates
from quakestack.archive.plan import Plan, StationDayTask
from quakestack.catalog.jobs import classifies_events, open_archive, open_inventory
from quakestack.catalog.pipeline import build_catalog, run_station_day
from quakestack.devices import resolve_device
from quakestack.errors import FailedPrecondition, QuakestackError
from quakestack.inference.annotate import AnnotateOptions
from quakestack.inference.quality import InputPolicy
from quakestack.inference.servables.base import Servable
from quakestack.inference.servables.factory import build_servable
from quakestack.jobs import fanout
from quakestack.jobs.executor import worker_command
from quakestack.jobs.retry import with_retries
from quakestack.jobs.state import JobState
from quakestack.jobs.worker import RETRY_STORAGE_S, WorkerContext, kill_own_group
from quakestack.layout import CATALOG_FILES, catalog_file_key, catalog_prefix, picks_key
from quakestack.logging import get_logger
from quakestack.model_store import ModelStore

__all__ = ["run_job"]
REPORT_EVERY_S = 1.0


def load_model(model_store: ModelStore, ref: dict[str, Any] | None, device) -> Servable | None:
    """A registered version (pinned at creation) on the device; weights sha256-checked, loaded weights-only."""
    if not ref:
        return None
    card = model_store.card(ref["name"], int(ref["version"]))
    if ref.get("weights_sha256") and card.get("weights_sha256") != ref["weights_sha256"]:
        raise FailedPrecondition(f"model {ref['name']} v{ref['version']} was replaced after the job was created")
    return build_servable(card, model_store.weights(card), device)


def plan_of(spec: dict[str, Any]) -> Plan:
    tasks = [StationDayTask(**{**t, "channels": tuple(t["channels"])}) for t in spec["tasks"]]
    stations = {k: StationCoordinates(**v) for k, v in spec["stations"].items()}
    return Plan(tasks, list(spec["missing"]), stations)


class Progress:
    """Rank 0's view of every worker's station-days (one LIST of the picks objects), reported as events."""

    def __init__(self, ctx: WorkerContext, plan: Plan):
        self.ctx = ctx
        self.ids = {t.task_id: t for t in plan.tasks}
        self.seen: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()
        self.before = self._done_keys()  # finished by an earlier attempt: not this attempt's speed
        self.last: dict[str, Any] = {}
        self.last_time = 0.0

    def _done_keys(self) -> set[str]:
        prefix = catalog_prefix(self.ctx.job_id) + "picks/"
        infos = with_retries(lambda: self.ctx.store.list(prefix), RETRY_STORAGE_S)
        names = {info.key[len(prefix):].removesuffix(".json") for info in infos}
        return {n for n in names if n in self.ids}

    def record(self, task_id: str, record: dict[str, Any]) -> None:
        self.seen.setdefault(task_id, record)

    def missing(self) -> list[StationDayTask]:
        done = self._done_keys()
        return [t for tid, t in self.ids.items() if tid not in done]

    def report(self, stage: str = "picking", force: bool = False, **extra: Any) -> None:
        if not force and time.monotonic() - self.last_time < REPORT_EVERY_S:
            return
        done = self._done_keys()
        for task_id in sorted(done - set(self.seen)):
            self.seen[task_id] = with_retries(lambda t=task_id: self.ctx.store.get_json(picks_key(self.ctx.job_id, t)),
                                              RETRY_STORAGE_S)
        elapsed = max(1e-6, time.monotonic() - self.started)
        fresh = [self.seen[t] for t in done if t not in self.before]
        hours = sum(float(r.get("data_seconds", 0.0)) for r in fresh) / 3600.0
        remaining = len(self.ids) - len(done)
        eta = remaining * elapsed / len(fresh) if fresh and remaining else 0.0
        event = {"stage": stage, "station_days_total": len(self.ids), "station_days_done": len(done),
                 "picks": sum(len(self.seen[t].get("picks", [])) for t in done),
                 "data_hours_per_s": round(hours / elapsed, 4), "eta_s": round(eta, 1), **extra}
        comparable = {k: v for k, v in event.items() if k not in ("data_hours_per_s", "eta_s")}
        if force or comparable != {k: v for k, v in self.last.items() if k not in ("data_hours_per_s", "eta_s")}:
            self.ctx.emit({"type": "progress", **event})
            self.last = event
        self.last_time = time.monotonic()


def _replaced(ctx: WorkerContext) -> bool:
    """A peer's check between station-days: the job was cancelled, or this attempt is no longer current."""
    try:
        control = ctx.jobs.control(ctx.job_id)
    except QuakestackError:
        return False
    return bool(control.get("cancel")) or int(control.get("attempt", 0)) != ctx.attempt


def run_job(ctx: WorkerContext) -> int:
    """One attempt (rank 0) or one peer's share of an annotation job; the outcome is in the log."""
    spec = ctx.spec
    rank, count = fanout.index(), int(spec["workers"])
    log = get_logger(job_id=ctx.job_id, attempt=ctx.attempt, rank=rank)
    peers = []
    try:
        if rank == 0:
            ctx.start_heartbeat(on_cancel=kill_own_group, on_fenced=kill_own_group)
            ctx.state(JobState.RUNNING, f"worker started ({count} process(es))")
            if count > 1 and not fanout.in_pods():
                peers = fanout.spawn_peers(worker_command(ctx.job_id, ctx.attempt), count)
        device = resolve_device(spec.get("device", "auto"))
        if device.type == "cpu":  # peers on this machine share its cores (an Indexed Job's pod has its own)
            import torch

            torch.set_num_threads(fanout.local_share(os.cpu_count() or 1, count))
        plan = plan_of(spec)
        archive = open_archive(ctx.store, ctx.settings, spec["archive"])
        models = ModelStore(ctx.store, ctx.jobs.db)
        inventory = open_inventory(ctx.store, ctx.settings, spec["inventory"]) if spec.get("remove_response") else None
        picker = load_model(models, spec["picker"], device)
        options = AnnotateOptions(threshold=float(spec["pick_threshold"]))
        policy = InputPolicy(**spec.get("input_policy", {}))  # jobs of older builds: the defaults

        def pick(task: StationDayTask) -> dict[str, Any]:
            return with_retries(lambda: run_station_day(task, archive, picker, ctx.store, ctx.job_id, options,
                                                        response_inventory=inventory, policy=policy),
                                RETRY_STORAGE_S)

        mine = fanout.share(plan.tasks, rank, count)
        if rank != 0:
            for task in mine:
                if _replaced(ctx):
                    return 0
                pick(task)
            return 0
        progress = Progress(ctx, plan)
        progress.report(force=True)
        for task in mine:
            progress.record(task.task_id, pick(task))
            progress.report()
        while missing := progress.missing():  # the peers' rest, from the end of the plan
            task = missing[-1]
            progress.record(task.task_id, pick(task))
            progress.report()
        fanout.stop_peers(peers)
        peers = []
        progress.report("associating", force=True)
        magnitude = load_model(models, spec.get("magnitude_model"), device)
        extra: dict[str, Any] = {}
        classifier = load_model(models, spec.get("classifier"), device)
        if classifier is not None:  # s3-catalog's keyword; refused clearly by an older build_catalog
            if not classifies_events():
                raise FailedPrecondition("this build cannot classify events (build_catalog has no classifier_model)")
            extra["classifier_model"] = classifier
        result = with_retries(lambda: build_catalog(ctx.store, ctx.job_id, plan, archive,
                                                    spec["association_parameters"], magnitude_model=magnitude,
                                                    **extra), RETRY_STORAGE_S)
        keys = [catalog_file_key(ctx.job_id, name) for name in CATALOG_FILES if name != "summary.json"]
        progress.report("done", force=True, events=int(result["events"]),
                        associated_picks=int(result["associated_picks"]), catalog_keys=keys,
                        association_s=float(result.get("association_s", 0.0)))
        ctx.state(JobState.SUCCEEDED, f"{result['events']} events from {result['picks']} picks"
                  + input_note(result, len(plan.tasks)))
        log.info("annotation done", events=result["events"], picks=result["picks"])
    except Exception as exc:  # noqa: BLE001 - any failure ends the job FAILED with its reason
        log.error("annotation failed", error=str(exc), traceback=traceback.format_exc())
        fanout.stop_peers(peers)
        if rank == 0:
            ctx.state(JobState.FAILED, _reason(exc))
        return 1
    return 0


def input_note(result: dict[str, Any], station_days: int) -> str:
    """What the input gate refused or changed and which origins lie on the search volume's edge, for the job's
    final message (the details are in summary.json)."""
    gate = result.get("input") or {}
    parts = []
    if gate.get("refused"):
        parts.append(f"{gate['refused']} of {station_days} station-days refused by the input gate")
    if gate.get("gap_filled_samples"):
        parts.append(f"{gate['gap_filled_samples']} samples gap-filled with zeros")
    if gate.get("resampled"):
        parts.append(f"{gate['resampled']} station-days resampled")
    if result.get("events_at_search_edge"):
        parts.append(f"{result['events_at_search_edge']} events at the edge of the search volume")
    if result.get("refused_station_windows"):
        parts.append(f"{result['refused_station_windows']} station windows refused for magnitudes or types")
    return "; " + "; ".join(parts) + " (see summary.json)" if parts else ""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, QuakestackError):
        return str(exc)[:500]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]
