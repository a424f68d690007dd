"""The sweep runner of the job runtime: one attempt of a sweep's controller, from its spec, Optuna's storage
and the job store.

Started like every worker (`python -m quakestack.jobs.worker --job-id <sweep> --attempt <n>`), so a sweep has
the job runtime's leases, heartbeats, retries and re-attachment. The controller keeps nothing that matters
in memory: each pass reads the trials from Optuna's storage and their training jobs from the job store, so a
controller started after a SIGKILL carries on where the last one was:

- a RUNNING trial whose job does not exist yet (killed between `ask` and the job's creation) gets its job,
  named `<sweep>-t<number>`, so no trial ever has two;
- epochs are reported to the pruner by step (Optuna ignores a step it already holds), so none counts twice;
- a trial whose job ended is told COMPLETE / PRUNED / FAIL exactly once (a told trial is no longer RUNNING);
- the best trial is registered once (a version whose card names this sweep is found, not made again).

Trials are ordinary training jobs: the trainer's scheduler runs them (its slots, GPU pool, retries, resume).
A pruned trial is stopped through its job's control, as `StopTrainingJob` does.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from typing import Any

import optuna
import sqlalchemy as sa
import torch
from optuna.trial import FrozenTrial, TrialState

from quakestack.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, QuakestackError, Unavailable
from quakestack.jobs.scheduler import request_cancel
from quakestack.jobs.state import JobState
from quakestack.jobs.worker import RETRY_STORAGE_S, WorkerContext, kill_own_group
from quakestack.logging import get_logger
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.metadata.jobs import JobView
from quakestack.model_store import ModelStore
from quakestack.protoconv import seconds_from_iso
from quakestack.sweeps import study as studies
from quakestack.sweeps.spec import objective_value, space_of
from quakestack.sweeps.trials import JOB_ATTR, MESSAGE_ATTR, PRUNE_ATTR, best_trial, summary, trial_job_id
from quakestack.training.jobs import KIND as TRAINING
from quakestack.training.jobs import build_spec, job_gpus, request_stop, training_record
from quakestack.training.register import register_epoch

__all__ = ["run_job"]
PASS_S = 0.25  # how often the controller looks at its trials (one read of the study, one per running trial)
STORAGE_ERRORS = (Unavailable, optuna.exceptions.StorageInternalError, sa.exc.OperationalError,
                  sa.exc.InterfaceError)


class Controller:
    def __init__(self, ctx: WorkerContext):
        self.ctx = ctx
        self.spec = ctx.spec
        self.sweep_id = ctx.job_id
        self.jobs = ctx.jobs
        self.log = get_logger(job_id=self.sweep_id, attempt=ctx.attempt)
        self.storage = studies.open_storage(ctx.jobs.db)
        self.space = space_of(self.spec)
        self.grid = self.space.grid() if self.spec["sampler"] == "grid" else None
        self.study = studies.load_study(self.storage, self.spec, self.sweep_id, grid=self.grid)
        self.metric = self.spec["objective"]["metric"]
        self.catalog = DatasetCatalog(ctx.jobs.db)
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        self.gpu_count = job_gpus(ctx.settings, gpus)
        self.started_s = self._first_start()
        self.last_summary: dict[str, Any] | None = None

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> int:
        outage_since: float | None = None
        while True:
            try:
                done = self.step()
                outage_since = None
            except STORAGE_ERRORS as exc:
                outage_since = outage_since or time.monotonic()
                if time.monotonic() - outage_since > RETRY_STORAGE_S:
                    raise
                self.log.warning("storage or database unreachable: the sweep waits", error=str(exc)[:200])
                done = False
            if done:
                return 0
            time.sleep(PASS_S)

    def step(self) -> bool:
        """One pass: follow the running trials, then end the sweep or start trials. True when it has ended."""
        control = self.ctx.control()
        trials = self.study.get_trials(deepcopy=False)
        for trial in trials:
            if trial.state is TrialState.RUNNING:
                self.follow(trial, control)
        trials = self.study.get_trials(deepcopy=False)
        counts = {state: sum(t.state is state for t in trials) for state in TrialState}
        running, failed = counts[TrialState.RUNNING], counts[TrialState.FAIL]
        started = len(trials) - counts[TrialState.WAITING]
        self.report(trials)
        if failed >= int(control["max_failures"]):
            self.cancel_running(trials)
            self.ctx.state(JobState.FAILED, f"{failed} trials failed (max_failures {control['max_failures']}): "
                           + self._last_failure(trials))
            return True
        reason = self.no_more_trials(control, trials, started)
        if reason and not running:
            self.finish(trials, reason)
            return True
        while not reason and running < int(control["parallel_trials"]):
            self.start_trial(len(trials))
            trials = self.study.get_trials(deepcopy=False)
            running, started = running + 1, started + 1
            reason = self.no_more_trials(control, trials, started)
        return False

    def no_more_trials(self, control: dict[str, Any], trials: list[FrozenTrial], started: int) -> str:
        """Why no further trial starts (empty: one may)."""
        if control.get("stop"):
            return "stopped by request"
        if started >= int(control["max_trials"]):
            return f"all {control['max_trials']} trials ran"
        if self.grid is not None and started >= self.space.grid_size():
            return "every grid point ran"
        budget = float(control.get("time_budget_s") or 0.0)
        if budget and time.time() - self.started_s >= budget:
            return f"the time budget of {budget:g} s is spent"
        target = self.spec["objective"].get("target")
        best = best_trial(self.study, trials)
        if target is not None and best is not None:
            better = best.value >= target if self._maximise else best.value <= target
            if better:
                return f"trial {best.number} reached the target {target:g}"
        return ""

    # -- trials ---------------------------------------------------------------------------------
    def start_trial(self, number_hint: int) -> None:
        """Ask Optuna for the next trial (an enqueued one first), sample its values, queue its training job."""
        self.study.sampler = studies.make_sampler(self.spec, number_hint, self.grid)
        trial = self.study.ask()
        self._queue_job(trial)

    def _queue_job(self, trial: optuna.Trial) -> JobView | None:
        """The trial's training job, created once (a restarted controller finds it by name)."""
        job_id = trial_job_id(self.sweep_id, trial.number)
        existing = self.jobs.find(job_id)
        if existing is not None:
            return existing
        self.study.sampler = studies.make_sampler(self.spec, trial.number, self.grid)
        values = self.space.sample(trial)  # values already sampled (or enqueued) come back as they were
        trial.set_user_attr(JOB_ATTR, job_id)
        hp = {**self.spec["hyper_parameters"], **values}
        try:
            spec = build_spec(self.ctx.store, self.catalog, dataset=self.spec["dataset"],
                              architecture=self.spec["architecture"], values=hp, device=self.spec["device"],
                              display_name=f"{self.spec.get('display_name') or self.sweep_id} trial {trial.number}",
                              gpu_count=self.gpu_count)
        except (InvalidArgument, FailedPrecondition, NotFound) as exc:
            trial.set_user_attr(MESSAGE_ATTR, f"not started: {exc}")
            studies.tell(self.study, trial, state=TrialState.FAIL)
            return None
        expected = self.spec.get("dataset_manifest_sha256")
        if expected and spec["dataset_manifest_sha256"] != expected:  # trials must be comparable
            now = spec["dataset_manifest_sha256"]
            trial.set_user_attr(MESSAGE_ATTR, f"not started: dataset {self.spec['dataset']!r} was replaced after the "
                                f"sweep began (manifest {expected[:12]} then, {now[:12]} now)")
            studies.tell(self.study, trial, state=TrialState.FAIL)
            return None
        spec = {**spec, "owner": self.spec.get("owner", ""), "sweep": {"sweep_id": self.sweep_id,
                                                                        "trial": trial.number}}
        with contextlib.suppress(Conflict):  # another attempt created it a moment ago
            self.jobs.create(training_record(spec, job_id), {"epochs": spec["epochs"]},
                             {"type": "state", "state": JobState.QUEUED.value,
                              "message": f"trial {trial.number} of sweep {self.sweep_id}"})
        self.log.info("trial started", trial=trial.number, trial_job=job_id, parameters=values)
        return self.jobs.find(job_id)

    def follow(self, frozen: FrozenTrial, control: dict[str, Any]) -> None:
        """Report the trial's new epochs to the pruner, prune it, or tell Optuna how it ended."""
        trial = optuna.Trial(self.study, frozen._trial_id)
        job_id = frozen.user_attrs.get(JOB_ATTR) or trial_job_id(self.sweep_id, frozen.number)
        view = self.jobs.find(job_id)
        if view is None:
            if self._queue_job(trial) is None:
                return
            view = self.jobs.get(job_id, TRAINING)
        done, reported = int(view.status["epochs_done"]), max(frozen.intermediate_values, default=0)
        if done <= reported and not view.terminal:
            return  # no new epoch: no read of its events, no pruner call (this runs every pass)
        events = self.jobs.all_events(job_id, ("epoch",)) if done else []
        for event in events:
            value = objective_value(event, self.metric)
            if int(event["epoch"]) > reported and value is not None:
                trial.report(value, int(event["epoch"]))
        if view.terminal:
            self.tell(trial, frozen, view, events)
        elif PRUNE_ATTR not in frozen.user_attrs and view.state is JobState.RUNNING and trial.should_prune():
            epoch = int(events[-1]["epoch"])
            trial.set_user_attr(PRUNE_ATTR, epoch)
            trial.set_user_attr(MESSAGE_ATTR, f"pruned after epoch {epoch}")
            with contextlib.suppress(FailedPrecondition):  # it ended meanwhile: the next pass tells how
                request_stop(self.jobs, job_id)
            self.log.info("trial pruned", trial=frozen.number, epoch=epoch)

    def tell(self, trial: optuna.Trial, frozen: FrozenTrial, view: JobView, events: list[dict[str, Any]]) -> None:
        values = [v for v in (objective_value(e, self.metric) for e in events) if v is not None]
        if view.state is JobState.SUCCEEDED and values:
            studies.tell(self.study, trial, max(values) if self._maximise else min(values))
        elif view.state is JobState.STOPPED:
            if PRUNE_ATTR not in frozen.user_attrs:
                trial.set_user_attr(MESSAGE_ATTR, "stopped by hand")
            studies.tell(self.study, trial, state=TrialState.PRUNED)
        else:
            why = view.status.get("error") or view.state.value.lower()
            if view.state is JobState.SUCCEEDED:
                why = f"no finite {self.metric} in any epoch"
            trial.set_user_attr(MESSAGE_ATTR, f"{view.state.value.lower()}: {why}"[:500])
            studies.tell(self.study, trial, state=TrialState.FAIL)

    def cancel_running(self, trials: list[FrozenTrial]) -> None:
        for trial in trials:
            if trial.state is TrialState.RUNNING:
                job_id = trial.user_attrs.get(JOB_ATTR) or trial_job_id(self.sweep_id, trial.number)
                with contextlib.suppress(FailedPrecondition, NotFound):
                    request_cancel(self.jobs, job_id, TRAINING)

    # -- reporting and the end ------------------------------------------------------------------
    def report(self, trials: list[FrozenTrial], **extra: Any) -> None:
        """A progress event whenever the counts or the best trial changed (watchers see each change once)."""
        current = {**summary(self.sweep_id, self.study, trials), **extra}
        if current != self.last_summary:
            self.ctx.emit({"type": "progress", **current})
            self.last_summary = current

    def finish(self, trials: list[FrozenTrial], reason: str) -> None:
        best = best_trial(self.study, trials)
        importances = self.importances(trials)
        registered = self.register(best) if best is not None else None
        self.report(trials, importances=importances, registered=registered, reason=reason)
        if best is None:
            self.ctx.state(JobState.SUCCEEDED, f"{reason}; no trial completed, nothing registered")
            return
        where = f"; registered as {registered['name']} v{registered['version']}" if registered else ""
        self.ctx.state(JobState.SUCCEEDED, f"{reason}; best trial {best.number} ({self.metric} = {best.value:.6g})"
                       + where)

    def importances(self, trials: list[FrozenTrial]) -> dict[str, float]:
        """Optuna's evaluator (fANOVA) over the complete trials; empty below two or without variation."""
        complete = [t for t in trials if t.state is TrialState.COMPLETE]
        if len(complete) < 2:
            return {}
        try:
            return {k: float(v) for k, v in optuna.importance.get_param_importances(self.study).items()}
        except (RuntimeError, ValueError) as exc:
            self.log.info("no importances", reason=str(exc)[:200])
            return {}

    def register(self, best: FrozenTrial) -> dict[str, Any] | None:
        target = self.spec["register_best"]
        name = target.get("model_name")
        if not name:
            return None
        models = ModelStore(self.ctx.store, self.jobs.db)
        for card in models.versions(name):
            if (card.get("sweep") or {}).get("sweep_id") == self.sweep_id:
                return {"name": name, "version": int(card["version"])}
        job_id = best.user_attrs.get(JOB_ATTR) or trial_job_id(self.sweep_id, best.number)
        events = self.jobs.all_events(job_id, ("epoch",))
        scored = [(v, int(e["epoch"])) for e in events if (v := objective_value(e, self.metric)) is not None]
        epoch = (max(scored) if self._maximise else min(scored, key=lambda s: (s[0], s[1])))[1]
        card = register_epoch(models, self.jobs, name, job_id, epoch, target.get("aliases", []), extra_card={
            "sweep": {"sweep_id": self.sweep_id, "trial": best.number, "objective": self.metric,
                      "direction": self.spec["objective"]["direction"], "value": best.value,
                      "parameters": dict(best.params)}})
        self.log.info("best trial registered", trial=best.number, model=name, version=card["version"])
        return {"name": name, "version": int(card["version"])}

    # -- helpers --------------------------------------------------------------------------------
    @property
    def _maximise(self) -> bool:
        return self.spec["objective"]["direction"] == "maximize"

    def _first_start(self) -> float:
        """When the sweep first ran (its time budget counts from there, across restarts)."""
        for event in self.ctx.events(("state",)):
            if event.get("state") == JobState.RUNNING.value:
                return seconds_from_iso(event.get("time")) or time.time()
        return time.time()

    @staticmethod
    def _last_failure(trials: list[FrozenTrial]) -> str:
        failed = [t for t in trials if t.state is TrialState.FAIL]
        return f"trial {failed[-1].number}: {failed[-1].user_attrs.get(MESSAGE_ATTR, '')}" if failed else ""


def run_job(ctx: WorkerContext) -> int:
    """One attempt of a sweep's controller; the outcome is in the sweep's log."""
    log = get_logger(job_id=ctx.job_id, attempt=ctx.attempt)
    controller: Controller | None = None

    def cancelled() -> None:
        if controller is not None:  # the trials go with the sweep
            try:
                controller.cancel_running(controller.study.get_trials(deepcopy=False))
            except Exception:  # noqa: BLE001 - the service's CancelSweep cancels them too
                log.warning("could not cancel the running trials", exc_info=True)
        kill_own_group()

    ctx.start_heartbeat(on_cancel=cancelled, on_fenced=kill_own_group)
    try:
        ctx.state(JobState.RUNNING, "controller started" if ctx.attempt <= 1 else
                  f"controller restarted (attempt {ctx.attempt}); trials carry on")
        controller = Controller(ctx)
        return controller.run()
    except QuakestackError as exc:
        ctx.state(JobState.FAILED, str(exc))
        return 1
    except Exception as exc:  # noqa: BLE001 - a failed sweep says why
        log.error("sweep controller failed", error=traceback.format_exc())
        ctx.state(JobState.FAILED, f"{type(exc).__name__}: {exc}"[:500])
        return 1

