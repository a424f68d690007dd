"""Training jobs on the job runtime: the spec built once at creation, and the user's commands.

Everything here is a write to storage (job.json, the control record, the event log) that any
replica, and the job's worker, will see; nothing depends on which process the worker is a child of.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from quakestack import metrics
from quakestack.config import Settings
from quakestack.data.manifest import load_manifest
from quakestack.devices import check_gpus
from quakestack.errors import FailedPrecondition, InvalidArgument
from quakestack.jobs.executor import Executor, make_executor
from quakestack.jobs.migrate import migrate_legacy_job
from quakestack.jobs.scheduler import JobView, Scheduler, SchedulerConfig
from quakestack.jobs.spec import JobRecord, new_job_id
from quakestack.jobs.state import RESUMABLE, TERMINAL, JobState
from quakestack.models.spec import resolve_params
from quakestack.models.zoo import TRAINING_HYPER_PARAMETERS, get_architecture
from quakestack.protoconv import utc_now_iso
from quakestack.stack import settings_env
from quakestack.storage import ObjectStore, validate_name
from quakestack.training.augment import AUGMENTATION_HYPER_PARAMETERS
from quakestack.training.data import check_compatible
from quakestack.training.legacy import legacy_training_job

KIND = "training"
SPEC_VERSION = 1
JOB_HYPER_PARAMETERS = TRAINING_HYPER_PARAMETERS + AUGMENTATION_HYPER_PARAMETERS


def build_spec(store: ObjectStore, *, dataset: str, architecture: str, values: dict[str, Any], device: str,
               display_name: str, gpu_count: int) -> dict[str, Any]:
    """The training spec, resolved and validated once: the worker takes it as-is."""
    if not dataset:
        raise InvalidArgument("dataset is required")
    validate_name(dataset, "dataset name")
    try:
        spec = get_architecture(architecture)
    except KeyError as exc:
        raise InvalidArgument(str(exc.args[0])) from None
    arch_names = {h.name for h in spec.hyper_parameters}
    job_names = {h.name for h in JOB_HYPER_PARAMETERS}
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
    manifest, manifest_sha = load_manifest(store, dataset)
    input_spec = spec.input_spec_for(arch_hp)
    check_compatible(spec, input_spec, manifest)
    return {"dataset": dataset, "dataset_manifest_sha256": manifest_sha, "architecture": spec.name,
            "task": spec.task.value, "hyper_parameters": arch_hp, "training_hyper_parameters": train_hp,
            "device": device, "epochs": int(train_hp["epochs"]), "display_name": display_name,
            "normalization": manifest.get("normalization", "none"), "input_spec": input_spec.to_dict(),
            "class_names": list(spec.class_names)}


def job_record(view: JobView) -> dict[str, Any]:
    """The flat view servicers convert: spec, folded status and the target epoch count."""
    spec, status = view.record.spec, view.status
    return {**spec, **{k: v for k, v in status.items() if k != "progress"}, "job_id": view.job_id,
            "create_time": view.record.create_time, "epochs": int(view.control.get("epochs") or spec["epochs"])}


class TrainingJobs:
    def __init__(self, store: ObjectStore, settings: Settings, *, gpu_count: int, executor: Executor | None = None):
        self.store = store
        self.settings = settings
        self.gpu_count = gpu_count
        # the GPUs a job may ask for: this machine's, or a job pod's node's with the kubernetes executor
        self.job_gpus = settings.jobs_k8s_gpus_per_node if settings.jobs_executor == "kubernetes" else gpu_count
        capacity = gpu_count or settings.trainer_cpu_slots
        self.scheduler = Scheduler(
            store, executor or make_executor(settings),
            SchedulerConfig(kind=KIND, capacity=capacity, lease_ttl_s=settings.jobs_lease_ttl_s,
                            lost_after_s=settings.jobs_lost_after_s, max_retries=settings.jobs_max_retries),
            worker_env=self._worker_env, slots_needed=self._slots_needed, on_event=self._on_event,
            migrate=self._migrate)

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown()

    # -- requests -----------------------------------------------------------------------------
    def create(self, **request: Any) -> JobView:
        """Queue a job owned by the caller's token; that token's queued-jobs quota is checked first."""
        owner = self.scheduler.caller_within_quota()
        spec = {**build_spec(self.store, gpu_count=self.job_gpus, **request), "owner": owner}
        self._check_local_nodes(spec)
        record = JobRecord(kind=KIND, version=SPEC_VERSION, job_id=new_job_id(), create_time=utc_now_iso(), spec=spec)
        return self.scheduler.create(record, {"epochs": spec["epochs"]})

    def get(self, job_id: str) -> JobView:
        return self.scheduler.get(job_id)

    def list(self) -> list[JobView]:
        return self.scheduler.list()

    def update_epochs(self, job_id: str, epochs: int) -> JobView:
        if epochs < 1:
            raise InvalidArgument(f"epochs must be >= 1, got {epochs}")
        view = self.get(job_id)
        if view.state in TERMINAL:
            raise FailedPrecondition(f"job {job_id} is {view.state.value}; resume it to train more epochs")
        self.scheduler.update_control(view, epochs=epochs)
        return view

    def stop(self, job_id: str) -> JobView:
        view = self.get(job_id)
        if view.state in TERMINAL:
            raise FailedPrecondition(f"job {job_id} is already {view.state.value}")
        self.scheduler.update_control(view, stop=True)
        if view.state is JobState.QUEUED:
            self.scheduler.append(view, {"type": "state", "state": JobState.STOPPED.value,
                                         "message": "stopped before it started"})
        elif view.state is JobState.RUNNING:
            self.scheduler.append(view, {"type": "state", "state": JobState.STOPPING.value,
                                         "message": "finishing the current batch and writing a checkpoint"})
        return view

    def cancel(self, job_id: str) -> JobView:
        """The worker ends the job CANCELLED within a heartbeat; a job with no worker is ended here."""
        view = self.get(job_id)
        if view.state in TERMINAL:
            raise FailedPrecondition(f"job {job_id} is already {view.state.value}")
        self.scheduler.update_control(view, cancel=True)
        if view.state is JobState.QUEUED:  # a worker starting meanwhile sees the flag and leaves
            self.scheduler.append(view, {"type": "state", "state": JobState.CANCELLED.value, "message": "cancelled"})
        return view

    def resume(self, job_id: str, epochs: int = 0) -> JobView:
        view = self.get(job_id)
        if view.state not in RESUMABLE:
            raise FailedPrecondition(f"job {job_id} is {view.state.value}; only STOPPED, FAILED or SUCCEEDED "
                                     "jobs resume")
        target = epochs or int(view.control.get("epochs") or view.record.spec["epochs"])
        done = int(view.status["epochs_done"])
        if target <= done:
            raise FailedPrecondition(f"job {job_id} has trained {done} epochs; resume with epochs > {done}")
        self.scheduler.update_control(view, epochs=target, stop=False, cancel=False)
        self.scheduler.append(view, {"type": "state", "state": JobState.QUEUED.value, "resume": True,
                                     "message": f"resuming from the last checkpoint (epoch {done})"})
        return view

    def subscribe(self, job_id: str, is_active=lambda: True):
        return self.scheduler.subscribe(job_id, is_active)

    def _check_local_nodes(self, spec: dict[str, Any]) -> None:
        """The local executor runs every node of a job on this machine: their GPUs must all be here."""
        hp = spec["training_hyper_parameters"]
        nodes, gpus = int(hp.get("num_nodes", 1) or 1), int(hp.get("num_gpus", 1) or 1)
        if (self.scheduler.executor.name == "local" and spec["device"] != "cpu" and self.gpu_count
                and nodes * gpus > self.gpu_count):
            raise FailedPrecondition(f"num_nodes={nodes} x num_gpus={gpus} needs {nodes * gpus} GPUs on this "
                                     f"machine (local executor) but it has {self.gpu_count}")

    def _migrate(self, job_id: str) -> JobRecord | None:
        """An older version's training job (job.json + metrics.jsonl) as a runtime job (jobs.migrate)."""
        convert = partial(legacy_training_job, kind=KIND, version=SPEC_VERSION,
                          job_hyper_parameters=JOB_HYPER_PARAMETERS)
        return migrate_legacy_job(self.store, job_id, convert)

    # -- workers ------------------------------------------------------------------------------
    def _slots_needed(self, view: JobView) -> int:
        """GPU slots of a job on this machine: every node's GPUs (the local executor runs all its nodes here)."""
        if not self.gpu_count:
            return 1
        hp = view.record.spec["training_hyper_parameters"]
        nodes = max(1, int(hp.get("num_nodes", 1) or 1)) if self.scheduler.executor.name == "local" else 1
        return max(1, min(self.gpu_count, nodes * int(hp.get("num_gpus", 1) or 1)))

    def _worker_env(self, view: JobView) -> dict[str, str]:
        import os

        env = {k: v for k, v in os.environ.items() if not k.startswith("QUAKESTACK_")}
        env.update(settings_env(self.settings))
        env["PYTHONUNBUFFERED"] = "1"
        if self.gpu_count:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(s) for s in view.slots)
        return env


    def _on_event(self, view: JobView, event: dict[str, Any]) -> None:
        if event.get("type") == "state":
            counts = {s.value: 0 for s in JobState}
            for other in list(self.scheduler.views.values()):
                counts[other.status["state"]] += 1
            for state, count in counts.items():
                metrics.TRAINING_JOBS.labels(state).set(count)
        elif event.get("type") == "epoch":
            _count(view, event)


def _count(view: JobView, event: dict[str, Any]) -> None:
    """Prometheus figures from the events as every replica sees them."""
    metrics.TRAINING_EPOCHS.labels(view.record.spec["architecture"]).inc()
    metrics.TRAINING_LOSS.labels(view.job_id, "train").set(float(event["train_loss"]))
    if event.get("val_loss") is not None:
        metrics.TRAINING_LOSS.labels(view.job_id, "val").set(float(event["val_loss"]))
    metrics.TRAINING_SAMPLES_PER_S.labels(view.job_id).set(float(event.get("samples_per_s", 0.0)))
