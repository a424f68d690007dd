"""Sweeps on the job runtime (kind "sweep"): create, get, list, watch, update, stop, cancel.

A sweep is a job whose worker is its controller (quakestack.sweeps.controller); its limits live in the job's
control record, so an update reaches the controller within a pass, and its trials live in Optuna's storage,
where the service reads them for GetSweep. The study and the hand-enqueued trials are written before the
sweep's job row: a sweep that exists always has its study.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from quakestack.config import Settings
from quakestack.errors import FailedPrecondition, NotFound
from quakestack.jobs.executor import Executor, make_executor, worker_env
from quakestack.jobs.scheduler import Scheduler, SchedulerConfig, request_cancel
from quakestack.jobs.spec import JobRecord, new_job_id
from quakestack.jobs.state import TERMINAL, JobState
from quakestack.metadata.database import Database
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.metadata.jobs import JobStore, JobView
from quakestack.models.zoo import get_architecture
from quakestack.protoconv import utc_now_iso
from quakestack.storage import ObjectStore
from quakestack.sweeps import study as studies
from quakestack.sweeps.compare import compare_runs
from quakestack.sweeps.spec import build_sweep_spec, check_enqueued, check_limits, space_of
from quakestack.sweeps.trials import STATES, trial_record
from quakestack.training.jobs import JOB_HYPER_PARAMETERS, job_gpus
from quakestack.training.jobs import KIND as TRAINING

KIND = "sweep"
SPEC_VERSION = 1
SLOTS = 8  # controllers one trainer runs at once (each a light process; trials take the trainer's own slots)


class SweepJobs:
    def __init__(self, store: ObjectStore, db: Database, settings: Settings, *, gpu_count: int,
                 executor: Executor | None = None):
        self.store = store
        self.db = db
        self.catalog = DatasetCatalog(db)
        self.job_gpus = job_gpus(settings, gpu_count)
        studies.prepare_storage(db)
        self.storage = studies.open_storage(db)
        self.scheduler = Scheduler(
            JobStore(db), executor or make_executor(settings),
            SchedulerConfig(kind=KIND, capacity=SLOTS, lease_ttl_s=settings.jobs_lease_ttl_s,
                            lost_after_s=settings.jobs_lost_after_s, max_retries=settings.jobs_max_retries,
                            tick_s=min(2.0, settings.jobs_lease_ttl_s / 6)),  # few, light jobs: an idle trainer
            worker_env=lambda view, slots: worker_env(settings))

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown()

    # -- requests -------------------------------------------------------------------------------
    def create(self, **request: Any) -> JobView:
        owner = self.scheduler.caller_within_quota()
        spec = {**build_sweep_spec(self.store, self.catalog, gpu_count=self.job_gpus, **request), "owner": owner}
        limits = spec.pop("limits")
        sweep_id = new_job_id("sw")
        study = studies.create_study(self.storage, spec, sweep_id)
        for values in spec.pop("enqueued"):
            study.enqueue_trial(values)
        record = JobRecord(kind=KIND, version=SPEC_VERSION, job_id=sweep_id, create_time=utc_now_iso(), spec=spec)
        return self.scheduler.create(record, limits)

    def get(self, sweep_id: str) -> JobView:
        return self.scheduler.get(sweep_id)

    def trials(self, sweep_id: str) -> list[dict[str, Any]]:
        """Every trial of the sweep, by number, as stored in Optuna's storage now."""
        view = self.get(sweep_id)
        study = studies.load_study(self.storage, view.record.spec, sweep_id)
        return [trial_record(sweep_id, t) for t in study.get_trials(deepcopy=False)]

    def update(self, sweep_id: str, changes: dict[str, Any], enqueue: list[dict[str, Any]]) -> JobView:
        view = self.get(sweep_id)
        if view.terminal:
            raise FailedPrecondition(f"sweep {sweep_id} is {view.state.value}; it takes no changes")
        spec = view.record.spec
        study = studies.load_study(self.storage, spec, sweep_id)
        trials = study.get_trials(deepcopy=False)
        started = sum(STATES.get(t.state) != "waiting" for t in trials)
        limits = {k: view.control.get(k) for k in ("max_trials", "parallel_trials", "max_failures", "time_budget_s")}
        limits.update({k: v for k, v in changes.items() if v})
        limits = check_limits(limits, started)
        arch = get_architecture(spec["architecture"])
        declared = {h.name: h for h in (*arch.hyper_parameters, *JOB_HYPER_PARAMETERS)}
        checked = [check_enqueued(v, space_of(spec), declared, f"enqueue_trials[{i}]") for i, v in enumerate(enqueue)]
        for values in checked:
            study.enqueue_trial(values)
        self.scheduler.update_control(sweep_id, **limits)
        return self.get(sweep_id)

    def stop(self, sweep_id: str) -> JobView:
        """No new trials; the running ones finish, then the controller ends the sweep SUCCEEDED."""
        view = self.get(sweep_id)
        if view.terminal:
            raise FailedPrecondition(f"sweep {sweep_id} is already {view.state.value}")
        self.scheduler.update_control(sweep_id, stop=True)
        if view.state is JobState.RUNNING:
            self.scheduler.append(sweep_id, {"type": "state", "state": JobState.STOPPING.value,
                                             "message": "starting no more trials; the running ones finish"})
        elif view.state is JobState.QUEUED:
            self.scheduler.append(sweep_id, {"type": "state", "state": JobState.STOPPED.value,
                                             "message": "stopped before it started"})
        return self.get(sweep_id)

    def cancel(self, sweep_id: str) -> JobView:
        """The sweep, then every running trial (its controller cancels them too, whichever comes first)."""
        view = self.scheduler.cancel(sweep_id)
        for trial in self.trials(sweep_id):
            if trial["state"] == "running":
                with contextlib.suppress(FailedPrecondition, NotFound):
                    request_cancel(self.scheduler.jobs, trial["job_id"], TRAINING)
        return view

    def watch(self, sweep_id: str, is_active=lambda: True) -> Iterator[JobView]:
        return self.scheduler.watch(sweep_id, is_active)

    def compare(self, sweep_id: str, job_ids: list[str], metric: str = "") -> dict[str, Any]:
        """A sweep's started trials and/or the given jobs, ranked by the metric (default: the sweep's objective)."""
        trials: dict[str, dict[str, Any]] = {}
        direction = metric_direction(metric or "val_loss")
        if sweep_id:
            objective = self.get(sweep_id).record.spec["objective"]
            if not metric or metric == objective["metric"]:
                metric, direction = objective["metric"], objective["direction"]
            started = {t["job_id"]: t for t in self.trials(sweep_id) if t["state"] != "waiting"}
            existing = self.scheduler.jobs.many(started)  # one query (a trial asked for may lack its job a moment)
            trials = {j: t for j, t in started.items() if j in existing}
        return compare_runs(self.scheduler.jobs, [*trials, *job_ids], metric=metric, direction=direction,
                            trials=trials)


def metric_direction(metric: str) -> str:
    """Losses and errors are minimised; scores (r2, f1, precision, accuracy, mcc, auc) maximised."""
    smaller = ("loss", "rmse", "mae", "_std", "residual_mean")
    return "minimize" if metric.endswith(smaller) else "maximize"


def sweep_record(view: JobView, trials: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The flat view the servicer converts: spec, control (limits as updated), status and its last summary."""
    spec, status, control = view.record.spec, view.status, view.control
    progress = status.get("progress") or {}
    return {**spec, "sweep_id": view.job_id, "state": status["state"], "error": status.get("error", ""),
            "create_time": view.record.create_time, "update_time": status.get("update_time"),
            "limits": {k: control.get(k) for k in ("max_trials", "parallel_trials", "max_failures", "time_budget_s")},
            "trial_counts": progress.get("trial_counts", {}), "best_trial": progress.get("best_trial"),
            "importances": progress.get("importances", {}), "registered": progress.get("registered"),
            "message": progress.get("reason", "") if view.state in TERMINAL else "", "trials": trials or []}
