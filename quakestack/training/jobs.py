"""Training jobs on the job runtime: the spec built once at creation, and the user's commands.

Everything here is a write to the metadata store (the job's record, its control record, its event
log) that any replica, and the job's worker, will see; nothing depends on which process the worker is
a child of.
"""

from __future__ import annotations

from typing import Any

from quakestack import metrics
from quakestack.config import Settings
from quakestack.data.manifest import load_manifest
from quakestack.devices import check_gpus
from quakestack.errors import FailedPrecondition, InvalidArgument
from quakestack.jobs.executor import Executor, make_executor, worker_env
from quakestack.jobs.scheduler import Scheduler, SchedulerConfig
from quakestack.jobs.spec import JobRecord, Migrated, new_job_id
from quakestack.jobs.state import RESUMABLE, TERMINAL, JobState
from quakestack.metadata.database import Database
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.metadata.jobs import JobStore, JobView
from quakestack.models.spec import resolve_params
from quakestack.models.zoo import TRAINING_HYPER_PARAMETERS, get_architecture
from quakestack.protoconv import utc_now_iso
from quakestack.storage import ObjectStore, validate_name
from quakestack.training.augment import AUGMENTATION_HYPER_PARAMETERS
from quakestack.training.data import check_compatible
from quakestack.training.finetune import (
    FINETUNE_HYPER_PARAMETERS,
    check_dataset_fits,
    check_options,
    initial_record,
    starting_point,
)
from quakestack.training.legacy import legacy_training_job

KIND = "training"
SPEC_VERSION = 1
JOB_HYPER_PARAMETERS = TRAINING_HYPER_PARAMETERS + AUGMENTATION_HYPER_PARAMETERS + FINETUNE_HYPER_PARAMETERS


def build_spec(store: ObjectStore, catalog: DatasetCatalog, *, dataset: str, architecture: str,
               values: dict[str, Any], device: str, display_name: str, gpu_count: int,
               initial: tuple[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The training spec, resolved and validated once: the worker takes it as-is. ``initial`` is a starting
    version (its reference and card) to fine-tune: its architecture and model_args become the job's."""
    if not dataset:
        raise InvalidArgument("dataset is required")
    validate_name(dataset, "dataset name")
    job_names = {h.name for h in JOB_HYPER_PARAMETERS}
    if initial is not None:
        architecture, arch_values = starting_point(initial[1], initial[0], architecture,
                                                   {k: v for k, v in values.items() if k not in job_names})
        values = {**arch_values, **{k: v for k, v in values.items() if k in job_names}}
    try:
        spec = get_architecture(architecture)
    except KeyError as exc:
        raise InvalidArgument(str(exc.args[0])) from None
    arch_names = {h.name for h in spec.hyper_parameters}
    unknown = sorted(set(values) - arch_names - job_names)
    if unknown:
        raise InvalidArgument(f"unknown hyper-parameter(s) {', '.join(unknown)} for {spec.name}; valid: "
                              f"{', '.join(sorted(arch_names | job_names))}")
    try:
        arch_hp = spec.resolve_hparams({k: v for k, v in values.items() if k in arch_names})
        train_hp = resolve_params(JOB_HYPER_PARAMETERS, {k: v for k, v in values.items() if k in job_names},
                                  what="training hyper-parameter")
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    device = check_gpus(device, gpu_count)
    if device != "cpu" and train_hp["num_gpus"] > gpu_count:
        raise FailedPrecondition(f"num_gpus={train_hp['num_gpus']} but this trainer has {gpu_count} GPU(s)")
    check_options(spec, train_hp)
    manifest, manifest_sha = load_manifest(store, catalog, dataset)
    input_spec = spec.input_spec_for(arch_hp)
    if initial is not None:
        check_dataset_fits(initial[0], dataset, input_spec, manifest)
    check_compatible(spec, input_spec, manifest)
    extra = {"initial_model": initial_record(initial[0].split("@")[0], initial[1])} if initial is not None else {}
    return {**extra, "dataset": dataset, "dataset_manifest_sha256": manifest_sha, "architecture": spec.name,
            "task": spec.task.value, "hyper_parameters": arch_hp, "training_hyper_parameters": train_hp,
            "device": device, "epochs": int(train_hp["epochs"]), "display_name": display_name,
            "normalization": manifest.get("normalization", "none"), "input_spec": input_spec.to_dict(),
            "class_names": list(spec.class_names)}


def training_record(spec: dict[str, Any], job_id: str = "") -> JobRecord:
    """A new training job's durable record (a sweep names its trials' ids; anyone else gets a fresh one)."""
    return JobRecord(kind=KIND, version=SPEC_VERSION, job_id=job_id or new_job_id(), create_time=utc_now_iso(),
                     spec=spec)


def job_gpus(settings: Settings, gpu_count: int) -> int:
    """The GPUs a job may ask for: this machine's, or a job pod's node's with the kubernetes executor."""
    return settings.jobs_k8s_gpus_per_node if settings.jobs_executor == "kubernetes" else gpu_count


def request_stop(jobs: JobStore, job_id: str) -> None:
    """Ask a job to stop gracefully (finish the batch, write a checkpoint, end STOPPED); a queued one ends now."""
    view = jobs.get(job_id, KIND)
    if view.state in TERMINAL:
        raise FailedPrecondition(f"job {job_id} is already {view.state.value}")
    jobs.update_control(job_id, stop=True)
    if view.state is JobState.QUEUED:
        jobs.append(job_id, {"type": "state", "state": JobState.STOPPED.value, "message": "stopped before it started"})
    elif view.state is JobState.RUNNING:
        jobs.append(job_id, {"type": "state", "state": JobState.STOPPING.value,
                             "message": "finishing the current batch and writing a checkpoint"})


def job_record(view: JobView) -> dict[str, Any]:
    """The flat view servicers convert: spec, folded status and the target epoch count (never below the epochs
    done: a count lowered while an epoch ran ends after that epoch)."""
    spec, status = view.record.spec, view.status
    epochs = max(int(view.control.get("epochs") or spec["epochs"]), int(status["epochs_done"]))
    return {**spec, **{k: v for k, v in status.items() if k != "progress"}, "job_id": view.job_id,
            "create_time": view.record.create_time, "epochs": epochs}


def legacy_converter(old: dict[str, Any], history: list[dict[str, Any]]) -> Migrated | None:
    """An older version's training job (job.json + metrics.jsonl) as this version's (metadata.importer)."""
    return legacy_training_job(old, history, kind=KIND, version=SPEC_VERSION,
                               job_hyper_parameters=JOB_HYPER_PARAMETERS)


class TrainingJobs:
    def __init__(self, store: ObjectStore, db: Database, settings: Settings, *, gpu_count: int,
                 executor: Executor | None = None):
        self.store = store
        self.catalog = DatasetCatalog(db)
        self.settings = settings
        self.gpu_count = gpu_count
        self.job_gpus = job_gpus(settings, gpu_count)
        capacity = gpu_count or settings.trainer_cpu_slots
        self.scheduler = Scheduler(
            JobStore(db), executor or make_executor(settings),
            SchedulerConfig(kind=KIND, capacity=capacity, lease_ttl_s=settings.jobs_lease_ttl_s,
                            lost_after_s=settings.jobs_lost_after_s, max_retries=settings.jobs_max_retries),
            worker_env=self._worker_env, slots_needed=self._slots_needed, on_event=_count)

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown()

    # -- requests -----------------------------------------------------------------------------
    def create(self, **request: Any) -> JobView:
        """Queue a job owned by the caller's token; that token's queued-jobs quota is checked first."""
        owner = self.scheduler.caller_within_quota()
        spec = {**build_spec(self.store, self.catalog, gpu_count=self.job_gpus, **request), "owner": owner}
        self._check_local_nodes(spec)
        return self.scheduler.create(training_record(spec), {"epochs": spec["epochs"]})

    def get(self, job_id: str) -> JobView:
        return self.scheduler.get(job_id)

    def epoch_events(self, job_id: str) -> list[dict[str, Any]]:
        """The job's epoch events (its own history), oldest first."""
        return self.scheduler.jobs.all_events(job_id, ("epoch",))

    def update_epochs(self, job_id: str, epochs: int) -> JobView:
        if epochs < 1:
            raise InvalidArgument(f"epochs must be >= 1, got {epochs}")
        view = self.get(job_id)
        if view.state in TERMINAL:
            raise FailedPrecondition(f"job {job_id} is {view.state.value}; resume it to train more epochs")
        # fewer than are done means "end after the epoch in progress": record that count, never "28/5"
        self.scheduler.update_control(job_id, epochs=max(epochs, int(view.status["epochs_done"]) + 1))
        return self.get(job_id)

    def stop(self, job_id: str) -> JobView:
        request_stop(self.scheduler.jobs, job_id)
        self.scheduler.wakeup.set()
        return self.get(job_id)

    def cancel(self, job_id: str) -> JobView:
        return self.scheduler.cancel(job_id)

    def resume(self, job_id: str, epochs: int = 0) -> JobView:
        view = self.get(job_id)
        if view.state not in RESUMABLE:
            raise FailedPrecondition(f"job {job_id} is {view.state.value}; only STOPPED, FAILED or SUCCEEDED "
                                     "jobs resume")
        target = epochs or int(view.control.get("epochs") or view.record.spec["epochs"])
        done = int(view.status["epochs_done"])
        if target <= done:
            raise FailedPrecondition(f"job {job_id} has trained {done} epochs; resume with epochs > {done}")
        self.scheduler.update_control(job_id, epochs=target, stop=False, cancel=False)
        self.scheduler.append(job_id, {"type": "state", "state": JobState.QUEUED.value, "resume": True,
                                       "message": f"resuming from the last checkpoint (epoch {done})"})
        return self.get(job_id)

    def subscribe(self, job_id: str, is_active=lambda: True, after: int = 0):
        return self.scheduler.subscribe(job_id, is_active, after)

    def _check_local_nodes(self, spec: dict[str, Any]) -> None:
        """The local executor runs every node of a job on this machine: their GPUs must all be here."""
        hp = spec["training_hyper_parameters"]
        nodes, gpus = int(hp.get("num_nodes", 1) or 1), int(hp.get("num_gpus", 1) or 1)
        if (self.scheduler.executor.name == "local" and spec["device"] != "cpu" and self.gpu_count
                and nodes * gpus > self.gpu_count):
            raise FailedPrecondition(f"num_nodes={nodes} x num_gpus={gpus} needs {nodes * gpus} GPUs on this "
                                     f"machine (local executor) but it has {self.gpu_count}")

    # -- workers ------------------------------------------------------------------------------
    def _slots_needed(self, view: JobView) -> int:
        """GPU slots of a job on this machine: every node's GPUs (the local executor runs all its nodes here)."""
        if not self.gpu_count:
            return 1
        hp = view.record.spec["training_hyper_parameters"]
        nodes = max(1, int(hp.get("num_nodes", 1) or 1)) if self.scheduler.executor.name == "local" else 1
        return max(1, min(self.gpu_count, nodes * int(hp.get("num_gpus", 1) or 1)))

    def _worker_env(self, view: JobView, slots: list[int]) -> dict[str, str]:
        env = worker_env(self.settings)
        if self.gpu_count:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(s) for s in slots)
        return env


def _count(view: JobView, event: dict[str, Any]) -> None:
    """Prometheus figures from the events of the jobs this replica supervises (each event counted once): by
    architecture, never by job (a job's figures are its events)."""
    if event.get("type") == "epoch":
        architecture = view.record.spec["architecture"]
        metrics.TRAINING_EPOCHS.labels(architecture).inc()
        metrics.TRAINING_SAMPLES_PER_S.labels(architecture).observe(float(event.get("samples_per_s") or 0.0))
