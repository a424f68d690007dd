"""The training runner of the job runtime: one attempt of a training job, from its spec and the store.

Started as `python -m quakestack.jobs.worker --job-id <id> --attempt <n>` (see quakestack.jobs.worker)
by the local executor, a Kubernetes Job, or torchrun (then this process is one rank). It verifies
the dataset manifest's sha256 recorded at creation, resumes from the newest checkpoint in storage
(never from what a service believes), writes each epoch's checkpoint with its event inside and then
the event itself, so an epoch whose event was lost in a crash is re-reported from its checkpoint and
every epoch appears exactly once. After each epoch, and with the job's end, rank 0 renders the job's
TensorBoard event file anew from those stored epoch events (quakestack.tracking), so it never counts an epoch
twice either. With `ddp_processes`/`num_gpus` > 1 (and no torchrun), the ranks are spawned from here and
rank 0 reports.
"""

from __future__ import annotations

import json
import math
import os
import traceback
from pathlib import Path
from typing import Any

import torch

from quakestack.config import load_settings
from quakestack.data.manifest import load_manifest
from quakestack.devices import resolve_device
from quakestack.embedded.seaweed import free_ports
from quakestack.errors import FailedPrecondition, NotFound
from quakestack.jobs.retry import with_retries
from quakestack.jobs.spec import JobRecord
from quakestack.jobs.state import JobState
from quakestack.jobs.worker import RETRY_STORAGE_S, WorkerContext, kill_own_group, torchrun_rank
from quakestack.layout import STOPPED, checkpoint_key, checkpoint_label, checkpoints_prefix, label_epoch
from quakestack.logging import configure, get_logger
from quakestack.metadata.database import Database, dumps
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.metadata.jobs import JobStore
from quakestack.models.checkpoint import load_state, state_to_bytes
from quakestack.models.zoo import get_architecture
from quakestack.storage import ObjectStore
from quakestack.tracking.artifacts import publish_event_file
from quakestack.training.data import check_compatible, fetch_split, load_split
from quakestack.training.finetune import initial_weights
from quakestack.training.loop import run_training

__all__ = ["run_job"]


def world_size(spec: dict[str, Any]) -> int:
    hp = spec["training_hyper_parameters"]
    if resolve_device(spec.get("device", "auto")).type == "cuda":
        return max(1, int(hp.get("num_gpus", 1) or 1))
    return max(1, int(hp.get("ddp_processes", 1)))


class SharedControl:
    """Target epochs and stop flag, set by the heartbeat thread, read by every local rank."""

    def __init__(self, ctx: Any, epochs: int, stop: bool):
        self._epochs = ctx.Value("i", epochs)
        self._stop = ctx.Value("b", 1 if stop else 0)

    def target_epochs(self) -> int:
        return int(self._epochs.value)

    def stop_requested(self) -> bool:
        return bool(self._stop.value)

    def apply(self, command: dict[str, Any]) -> None:
        if int(command.get("epochs") or 0) > 0:
            self._epochs.value = int(command["epochs"])
        if command.get("stop"):
            self._stop.value = 1


def verified_manifest(store: ObjectStore, catalog: DatasetCatalog,
                      spec: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The dataset's manifest, if it is still the one the job was created on."""
    dataset, expected = spec["dataset"], spec.get("dataset_manifest_sha256", "")
    try:
        manifest, sha = load_manifest(store, catalog, dataset)
    except NotFound:
        raise FailedPrecondition(f"dataset {dataset!r} was deleted after the job was created "
                                 f"(manifest sha256 {expected})") from None
    if expected and sha != expected:
        raise FailedPrecondition(f"dataset {dataset!r} changed after the job was created: manifest sha256 "
                                 f"{sha}, the job was created on {expected}")
    return manifest, sha


def resume_point(store: ObjectStore, job_id: str) -> tuple[str | None, dict[str, Any] | None]:
    """The newest checkpoint in storage: the last epoch's, or stopped.pt when it lies beyond it."""
    labels = [label for info in store.list(checkpoints_prefix(job_id))
              if (label := checkpoint_label(info.key)) is not None]
    epochs = sorted((label for label in labels if label != STOPPED), key=lambda label: label_epoch(label) or 0)
    best: tuple[str | None, dict[str, Any] | None] = (None, None)
    if epochs:
        best = (epochs[-1], None)
    if STOPPED in labels:
        stopped = load_state(store.get_bytes(checkpoint_key(job_id, STOPPED)))
        last = (label_epoch(epochs[-1]) or 0) if epochs else 0
        if int(stopped.get("epoch", 0)) >= last and int(stopped.get("batches_done", 0)) > 0:
            return STOPPED, stopped
    if best[0] is not None:
        best = (best[0], load_state(store.get_bytes(checkpoint_key(job_id, best[0]))))
    return best


def publish_tensorboard(ctx: WorkerContext, end_state: JobState | None = None,
                        retry_s: float = RETRY_STORAGE_S) -> None:
    """Store the job's TensorBoard event file rendered from its stored epoch events (and its end, if given).
    It is a view of the event log, so a failure to write it is logged and never fails the training."""
    try:
        epochs = ctx.events(("epoch",))
        with_retries(lambda: publish_event_file(ctx.store, ctx.job_id, ctx.spec, ctx.record.create_time, epochs,
                                                end_state.value if end_state else None), retry_s)
    except Exception as exc:  # noqa: BLE001 - the event log stays the record; the next epoch or end writes it again
        get_logger(job_id=ctx.job_id).warning("tensorboard event file not written", error=str(exc))


class Reporter:
    """Rank 0's reports: the checkpoint to object storage first, then the epoch's event (each epoch once)."""

    def __init__(self, ctx: WorkerContext, logged_epochs: int, environment: dict[str, Any] | None = None):
        self.ctx = ctx
        self.logged_epochs = logged_epochs
        self.environment = environment or {}

    def emit(self, event: dict[str, Any]) -> None:
        if event.get("type") == "epoch":
            if int(event["epoch"]) <= self.logged_epochs:
                return
            self.logged_epochs = int(event["epoch"])
            event = {**event, "environment": self.environment}  # what this epoch's numbers depend on
        self.ctx.emit(event)
        if event.get("type") == "epoch":
            publish_tensorboard(self.ctx)

    def save_checkpoint(self, label: str, state: dict[str, Any]) -> None:
        if "event" in state:
            state = {**state, "event": json.loads(dumps(state["event"]))}
        data = state_to_bytes(state)
        with_retries(lambda: self.ctx.store.put_bytes(checkpoint_key(self.ctx.job_id, label), data),
                     RETRY_STORAGE_S)


def _rank_main(rank: int, world: int, record: JobRecord, attempt: int,
               dirs: dict[str, list[str]], control: Any, port: int, manifest: dict[str, Any], resume_label: str | None,
               elapsed_before_s: float, logged_epochs: int, torchrun: bool = False) -> str:
    """One rank (the only one without DDP); a spawned rank rebuilds its context: nothing live is pickled."""
    settings = load_settings()  # from the inherited environment (Settings objects are not pickled)
    configure("job-worker", settings.log_level, settings.log_format)
    ctx = WorkerContext(settings, ObjectStore.from_settings(settings), JobStore(Database.from_settings(settings)),
                        record, attempt, rank=rank)
    spec = ctx.spec
    local_rank = int(os.environ.get("LOCAL_RANK", rank)) if torchrun else rank
    device = resolve_device(spec.get("device", "auto"), rank=local_rank)
    if world > 1:
        if not torchrun:
            os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, rank=rank, world_size=world)
        if device.type == "cuda":
            torch.cuda.set_device(device)
    if device.type == "cpu" and world > 1 and not torchrun:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    store = ctx.store
    arch = get_architecture(spec["architecture"])
    arch_hp = spec["hyper_parameters"]
    input_spec = arch.input_spec_for(arch_hp)
    normalization = manifest.get("normalization", "none")
    train = load_split([Path(d) for d in dirs["train"]], arch, input_spec, manifest, normalization)
    val = load_split([Path(d) for d in dirs["val"]], arch, input_spec, manifest, normalization)
    from quakestack.models.zoo import build_model
    from quakestack.training.environment import run_environment
    from quakestack.training.loop import seed_everything

    seed_everything(int(spec["training_hyper_parameters"]["seed"]))  # weight init is part of the run's seed
    model, _, _ = build_model(spec["architecture"], arch_hp)
    resume = load_state(store.get_bytes(checkpoint_key(ctx.job_id, resume_label))) if resume_label else None
    if resume is None and (initial := initial_weights(store, spec)) is not None:
        model.load_state_dict(initial)  # fine-tuning starts from the version's weights; a resume from its checkpoint
    reporter = Reporter(ctx, logged_epochs, run_environment(device, world))
    result = run_training(
        model=model, spec=arch, arch_hparams=arch_hp, hp=spec["training_hyper_parameters"], train=train, val=val,
        device=device, control=control, emit=reporter.emit, save_checkpoint=reporter.save_checkpoint,
        resume=resume, elapsed_before_s=elapsed_before_s, rank=rank, world=world)
    if rank == 0:
        state = JobState.STOPPED if result.state == "stopped" else JobState.SUCCEEDED
        publish_tensorboard(ctx, state)  # before the end is reported: a worker killed in between runs again
        ctx.state(state, result.message, epochs_done=result.epochs_done)
    if world > 1:
        torch.distributed.destroy_process_group()
    return result.state


def run_job(ctx: WorkerContext) -> int:
    """One attempt of a training job; its outcome is in the log (the exit code is for the executor)."""
    log = get_logger(job_id=ctx.job_id, attempt=ctx.attempt)
    spec = ctx.spec
    ranked = torchrun_rank()
    rank = ranked[0] if ranked else 0
    try:
        status = ctx.status()
        control_record = ctx.control()
        control = SharedControl(torch.multiprocessing.get_context("spawn"),
                                int(control_record.get("epochs") or spec["epochs"]), bool(control_record["stop"]))
        if rank == 0:
            ctx.control_target = control
            ctx.start_heartbeat(on_cancel=kill_own_group, on_fenced=kill_own_group)
        arch = get_architecture(spec["architecture"])
        manifest, manifest_sha = verified_manifest(ctx.store, DatasetCatalog(ctx.jobs.db), spec)
        check_compatible(arch, arch.input_spec_for(spec["hyper_parameters"]), manifest)
        cache = Path(ctx.settings.cache_dir)
        dirs = {split: [str(d) for d in fetch_split(ctx.store, spec["dataset"], manifest, split, cache, manifest_sha)]
                for split in ("train", "val")}
        resume_label, resume_state = resume_point(ctx.store, ctx.job_id)
        logged = int(status["epochs_done"])
        elapsed = float(status["elapsed_s"])
        if resume_state is not None and resume_state.get("event"):
            event = resume_state["event"]
            elapsed = max(elapsed, float(event.get("elapsed_s", 0.0)))
            if rank == 0 and int(event["epoch"]) > logged:  # the checkpoint was stored, its event was not
                ctx.emit(event)
                logged = int(event["epoch"])
        world = ranked[1] if ranked else world_size(spec)
        if rank == 0 and JobState(status["state"]) is not JobState.STOPPING:
            where = f"from {resume_label}" if resume_label else "from the start"
            ctx.state(JobState.RUNNING, f"worker started ({world} process(es)), {where}", world_size=world,
                      p_offset_s=p_offset_s(manifest, dirs))
        log.info("training", world_size=world, dataset=spec["dataset"], architecture=spec["architecture"],
                 resume_from=resume_label)
        port = free_ports(1)[0] if world > 1 and not ranked else 0
        args = (ctx.record, ctx.attempt, dirs, control, port, manifest, resume_label, elapsed, logged)
        if ranked:
            _rank_main(rank, world, *args, torchrun=True)
        elif world == 1:
            _rank_main(0, 1, *args)
        else:
            torch.multiprocessing.start_processes(_rank_main, args=(world, *args), nprocs=world,
                                                  start_method="spawn")
    except Exception as exc:  # noqa: BLE001 - any failure ends the job FAILED with its reason
        log.error("training failed", error=str(exc), traceback=traceback.format_exc())
        if rank == 0:
            publish_tensorboard(ctx, JobState.FAILED, retry_s=0.0)  # one try: the failure may be storage's
            ctx.state(JobState.FAILED, _reason(exc))
        return 1
    return 0


def p_offset_s(manifest: dict[str, Any], dirs: dict[str, list[str]]) -> float | None:
    """Where P sits in the training windows (median over the train split), for serving the model."""
    import numpy as np
    import pandas as pd

    samples = [pd.read_csv(Path(d) / "metadata.csv", usecols=["trace_p_arrival_sample"]).trace_p_arrival_sample
               for d in dirs["train"]]
    values = pd.to_numeric(pd.concat(samples), errors="coerce").dropna() if samples else []
    if not len(values):
        return None
    value = round(float(np.median(values)) / float(manifest["sampling_rate"]), 3)
    return value if math.isfinite(value) else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FailedPrecondition):
        return str(exc)[:500]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]

