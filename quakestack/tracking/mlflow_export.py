"""Replays quakestack's training jobs, sweeps and registered model versions into an MLflow tracking server.

A job is a run (params: its hyper-parameters; metrics: every epoch's scalars with step = epoch; tags:
dataset, architecture, state, `quakestack.job_id`; artifacts: its TensorBoard event files and evaluation
plots); a sweep is a parent run whose trials' runs carry `mlflow.parentRunId`; a registered version is
an MLflow model version (tagged `quakestack.version`, its source the job's run, its weights and card
uploaded there) with the same aliases. Running it again adds only what is new: runs are found by their
`quakestack.job_id` / `quakestack.sweep_id` tag, metric steps and params already there are skipped, versions
are found by their tag, and tags, status and aliases are set to what quakestack says now.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from quakestack.layout import EVAL_ARCHIVE, TENSORBOARD_ARCHIVE
from quakestack.tracking.mlflow_rest import ArtifactsNotProxied, MlflowError, MlflowRest
from quakestack.tracking.records import Job, Source, Sweep, Version

JOB_TAG = "quakestack.job_id"
SWEEP_TAG = "quakestack.sweep_id"
VERSION_TAG = "quakestack.version"
PARENT_TAG = "mlflow.parentRunId"
REGISTERED_TAG = "quakestack.registered_version"  # the run standing for a version no job here produced
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
# a job's state -> an MLflow run status (a job that may still run stays RUNNING)
RUN_STATUS = {"SUCCEEDED": "FINISHED", "FAILED": "FAILED", "CANCELLED": "KILLED", "STOPPED": "KILLED"}
# a sweep's state (JobState) -> the same
SWEEP_STATUS = RUN_STATUS


@dataclass
class ExportReport:
    """What one export did (counts), which run each job and sweep is, and what it had to leave out."""

    runs_created: int = 0
    runs_updated: int = 0
    metrics_logged: int = 0
    params_logged: int = 0
    artifacts_uploaded: int = 0
    versions_created: int = 0
    aliases_set: int = 0
    job_runs: dict[str, str] = field(default_factory=dict)
    sweep_runs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def param_text(value: Any) -> str:
    """A hyper-parameter as an MLflow param value: integral floats (protobuf Struct numbers) as integers, text as
    is, anything else as JSON."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else str(value)


def archive_members(data: bytes) -> list[tuple[str, bytes]]:
    """(path below the job's folder, bytes) of each file of a job's archive (its members are `<job-id>/<path>`)."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            reader = tar.extractfile(member) if member.isfile() else None
            if reader is not None and "/" in member.name and ".." not in member.name.split("/"):
                out.append((member.name.split("/", 1)[1], reader.read()))
    return out


class MlflowExporter:
    """One export into one experiment of one tracking server; `export` is the entry point."""

    def __init__(self, client: MlflowRest, source: Source, *, experiment: str = "quakestack", artifacts: bool = True,
                 note: Callable[[str], None] | None = None):
        self.client, self.source = client, source
        self.experiment = experiment
        self.artifacts = artifacts
        self.report = ExportReport()
        self._note = note or (lambda _text: None)
        self._experiment_id: str | None = None
        self._runs: dict[tuple[str, str], dict[str, Any]] | None = None

    # -- entry point --------------------------------------------------------------------------
    def export(self, *, job_ids: Iterable[str] = (), model_names: Iterable[str] = (),
               sweep_ids: Iterable[str] = ()) -> ExportReport:
        """Jobs, sweeps and models named; with none named, every one of each. A sweep brings its trials' jobs and a
        model its versions' source jobs."""
        job_ids, model_names, sweep_ids = list(job_ids), list(model_names), list(sweep_ids)
        if not (job_ids or model_names or sweep_ids):
            job_ids, model_names, sweep_ids = self.source.job_ids(), self.source.model_names(), self.source.sweep_ids()
        for sweep_id in sweep_ids:
            self.export_sweep(sweep_id)
        for job_id in job_ids:
            self.export_job(job_id)
        for name in model_names:
            self.export_model(name)
        return self.report

    def note(self, text: str) -> None:
        self.report.notes.append(text)
        self._note(text)

    # -- runs -----------------------------------------------------------------------------------
    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = self.client.experiment_id(self.experiment)
        return self._experiment_id

    def _find_run(self, tag: str, value: str) -> dict[str, Any] | None:
        """The experiment's run with this identity tag (the experiment's runs are read once per export)."""
        if self._runs is None:
            self._runs = {}
            for run in self.client.search_runs(self.experiment_id, ""):
                tags = {t["key"]: t.get("value", "") for t in run.get("data", {}).get("tags", [])}
                for key in (JOB_TAG, SWEEP_TAG, REGISTERED_TAG):
                    if tags.get(key):
                        self._runs.setdefault((key, tags[key]), run)
        return self._runs.get((tag, value))

    def _run(self, tag: str, value: str, name: str, start_ms: int) -> tuple[dict[str, Any], bool]:
        """The run tagged `tag=value`, created when missing; and whether it was created now."""
        found = self._find_run(tag, value)
        if found is not None:
            return found, False
        run = self.client.call("POST", "runs/create", {
            "experiment_id": self.experiment_id, "run_name": name, "start_time": start_ms,
            "tags": [{"key": tag, "value": value}]})["run"]
        assert self._runs is not None
        self._runs[(tag, value)] = run
        return run, True

    def _sync(self, run: dict[str, Any], created: bool, *, params: dict[str, str],
              metrics: list[tuple[str, float, int, int]], tags: dict[str, str], status: str, end_ms: int) -> None:
        """Log what the run lacks: params not there yet, metric steps not there yet; set tags and status."""
        run_id = run["info"]["run_id"]
        data = {} if created else run.get("data", {})
        have_params = {p["key"]: p.get("value", "") for p in data.get("params", [])}
        have_keys = {m["key"] for m in data.get("metrics", [])}
        have_steps = {key: {int(m.get("step", 0)) for m in self.client.metric_history(run_id, key)}
                      for key in have_keys}
        new_params = []
        for key, value in sorted(params.items()):
            if key in have_params:
                if have_params[key] != value:
                    self.note(f"run {run_id}: param {key} is {have_params[key]!r} in MLflow and {value!r} now; "
                              "MLflow params cannot change, so it keeps the first")
                continue
            if len(value) > MAX_PARAM_CHARS:
                self.note(f"run {run_id}: param {key} is longer than MLflow allows ({len(value)} characters); left out")
                continue
            new_params.append({"key": key, "value": value})
        new_metrics = [{"key": key, "value": value, "timestamp": time_ms, "step": step}
                       for key, value, step, time_ms in metrics if step not in have_steps.get(key, set())]
        self.client.log_batch(run_id, metrics=new_metrics, params=new_params,
                              tags=[{"key": k, "value": v} for k, v in sorted(tags.items())])
        update: dict[str, Any] = {"run_id": run_id, "status": status}
        if status != "RUNNING":
            update["end_time"] = end_ms
        self.client.call("POST", "runs/update", update)
        self.report.metrics_logged += len(new_metrics)
        self.report.params_logged += len(new_params)
        if created:
            self.report.runs_created += 1
        else:
            self.report.runs_updated += 1

    def upload(self, run: dict[str, Any], path: str, data: bytes) -> bool:
        """One artifact file of a run; False (with one note for the export) when the server cannot take it."""
        if not self.artifacts:
            return False
        try:
            self.client.upload_artifact(run["info"]["artifact_uri"], path, data)
        except ArtifactsNotProxied as exc:
            self.artifacts = False
            self.note(f"{exc}; exporting without artifacts")
            return False
        self.report.artifacts_uploaded += 1
        return True

    # -- jobs -------------------------------------------------------------------------------------
    def export_job(self, job_id: str, *, parent_run_id: str = "", extra_tags: dict[str, str] | None = None) -> str:
        """The job's run, created or brought up to date (once per export; a later call only adds its tags); its
        run id. A job quakestack does not have raises LookupError."""
        tags = {**(extra_tags or {}), **({PARENT_TAG: parent_run_id} if parent_run_id else {})}
        if job_id in self.report.job_runs:
            if tags:
                self.client.log_batch(self.report.job_runs[job_id],
                                      tags=[{"key": k, "value": v} for k, v in sorted(tags.items())])
            return self.report.job_runs[job_id]
        job = self.source.job(job_id)
        run, created = self._run(JOB_TAG, job.job_id, job.display_name or job.job_id, job.create_time_ms)
        tags = {**job_tags(job), **tags}
        metrics = [(key, value, e.epoch, e.time_ms) for e in job.epochs for key, value in sorted(e.scalars.items())]
        self._sync(run, created, params={k: param_text(v) for k, v in job.hyper_parameters.items()},
                   metrics=metrics, tags=tags, status=RUN_STATUS.get(job.state, "RUNNING"), end_ms=job.update_time_ms)
        for archive, folder in ((TENSORBOARD_ARCHIVE, "tensorboard"), (EVAL_ARCHIVE, "eval")):
            if not self.artifacts:
                break
            for path, data in archive_members(self.source.job_archive(job_id, archive)):
                self.upload(run, f"{folder}/{path}", data)
        self.report.job_runs[job_id] = run["info"]["run_id"]
        return run["info"]["run_id"]

    # -- registered models ----------------------------------------------------------------------
    def export_model(self, name: str) -> None:
        """The registered model, each version once (found again by its tag) and its aliases as quakestack has them."""
        versions = self.source.versions(name)
        try:
            self.client.call("GET", "registered-models/get", {"name": name})
        except MlflowError as exc:
            if exc.code != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.client.call("POST", "registered-models/create", {
                "name": name, "tags": [{"key": "quakestack.model", "value": name}],
                "description": "registered in quakestack; exported by `quakestack experiments export-mlflow`"})
        mapped = {}
        for mv in self.client.model_versions(name):
            tags = {t["key"]: t.get("value", "") for t in mv.get("tags", [])}
            if tags.get(VERSION_TAG, "").isdigit():
                mapped[int(tags[VERSION_TAG])] = str(mv["version"])
        for version in sorted(versions, key=lambda v: v.version):
            if version.version not in mapped:
                mapped[version.version] = self._create_version(version)
            for alias in version.aliases:
                self.client.call("POST", "registered-models/alias",
                                 {"name": name, "alias": alias, "version": mapped[version.version]})
                self.report.aliases_set += 1

    def _create_version(self, version: Version) -> str:
        """An MLflow model version of a quakestack version, its source the job's run (weights and card uploaded
        under `registered/<name>/<version>/` there); a version no job here produced gets a run of its own."""
        run_id, run = "", None
        try:
            run_id = self.export_job(version.job_id) if version.job_id else ""
            run = self._find_run(JOB_TAG, version.job_id) if run_id else None
        except LookupError:
            self.note(f"model {version.name} version {version.version}: its job {version.job_id} is gone")
        if run is None:  # imported, or its job is gone: a run of its own holds it (MLflow 3 wants a run source)
            run = self._registered_run(version)
            run_id = run["info"]["run_id"]
        folder = f"registered/{version.name}/{version.version}"
        self.upload(run, f"{folder}/model_card.json", json.dumps(version.card, indent=1, sort_keys=True).encode())
        weights = self.source.weights(version)
        if weights is not None:
            self.upload(run, f"{folder}/weights.pt", weights)
        source = f"runs:/{run_id}/{folder}"
        tags = {VERSION_TAG: str(version.version), JOB_TAG: version.job_id, "quakestack.epoch": str(version.epoch),
                "architecture": version.architecture, "dataset": version.dataset,
                **{f"metric.{k}": repr(v) for k, v in sorted(version.metrics.items())}}
        payload: dict[str, Any] = {"name": version.name, "source": source,
                                   "tags": [{"key": k, "value": v} for k, v in tags.items()],
                                   "description": f"quakestack {version.name} version {version.version}: job "
                                                  f"{version.job_id}, epoch {version.epoch}", "run_id": run_id}
        created = self.client.call("POST", "model-versions/create", payload)["model_version"]
        self.report.versions_created += 1
        return str(created["version"])

    def _registered_run(self, version: Version) -> dict[str, Any]:
        """A finished run standing for a version no training job here produced (imported, or its job deleted)."""
        key = f"{version.name}/{version.version}"
        run, created = self._run(REGISTERED_TAG, key, f"{version.name} v{version.version}", 0)
        if created:
            self.client.call("POST", "runs/update", {"run_id": run["info"]["run_id"], "status": "FINISHED",
                                                     "end_time": 0})
            self.report.runs_created += 1
        return run

    # -- sweeps ---------------------------------------------------------------------------------
    def export_sweep(self, sweep_id: str) -> str:
        """The sweep as a parent run (its settings as params; each finished trial's objective as the metric
        `objective` at step = trial number; importances; best trial) and each trial's job as a nested run."""
        sweep = self.source.sweep(sweep_id)
        run, created = self._run(SWEEP_TAG, sweep.sweep_id, sweep.display_name or sweep.sweep_id,
                                 sweep.create_time_ms)
        metrics = [("objective", float(t.value), t.number, sweep.update_time_ms)
                   for t in sweep.trials if t.value is not None]
        metrics += [(f"importance.{k}", float(v), 0, sweep.update_time_ms)
                    for k, v in sorted(sweep.importances.items())]
        self._sync(run, created, params={k: param_text(v) for k, v in sweep.settings.items()}, metrics=metrics,
                   tags=sweep_tags(sweep), status=SWEEP_STATUS.get(sweep.state, "RUNNING"),
                   end_ms=sweep.update_time_ms)
        parent = run["info"]["run_id"]
        self.report.sweep_runs[sweep_id] = parent
        for trial in sweep.trials:
            if trial.job_id:
                self.export_job(trial.job_id, parent_run_id=parent, extra_tags={
                    "quakestack.trial_of": sweep.sweep_id, "quakestack.trial_number": str(trial.number),
                    "quakestack.trial_state": trial.state})
        return parent


def job_tags(job: Job) -> dict[str, str]:
    tags = {"dataset": job.dataset, "architecture": job.architecture, "state": job.state, JOB_TAG: job.job_id,
            "device": job.device, "quakestack.epochs_done": str(job.epochs_done),
            "quakestack.best_epoch": str(job.best_epoch),
            "quakestack.dataset_manifest_sha256": job.dataset_manifest_sha256, "mlflow.source.name": "quakestack",
            "mlflow.runName": job.display_name or job.job_id}
    if job.error:
        tags["quakestack.error"] = job.error[:4000]
    return tags


def sweep_tags(sweep: Sweep) -> dict[str, str]:
    tags = {"dataset": sweep.dataset, "architecture": sweep.architecture, "state": sweep.state,
            SWEEP_TAG: sweep.sweep_id, "objective.metric": sweep.objective_metric,
            "objective.direction": sweep.objective_direction, "mlflow.source.name": "quakestack",
            "mlflow.runName": sweep.display_name or sweep.sweep_id}
    if sweep.best_trial is not None:
        tags["quakestack.best_trial"] = str(sweep.best_trial)
    return tags
