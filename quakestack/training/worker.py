"""The training worker: one process per job, started by the trainer service (never in its server).

Protocol with the service: the job is read from `jobs/<id>/job.json`; events go to stdout as lines
`@@qs <json>` (running, epoch, done, failed); commands come on stdin as JSON lines
(`{"epochs": N}`, `{"stop": true}`). End of stdin means the service is gone: the worker exits at
once and the restarted service resumes the job from its last checkpoint. Several processes (DDP)
are spawned from here, rank 0 reporting; the parent fetches the data once for all ranks.

    python -m quakestack.training.worker --job-id <id>
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import torch

from quakestack.config import load_settings
from quakestack.embedded.seaweed import free_ports
from quakestack.logging import configure, get_logger
from quakestack.models.checkpoint import load_state, state_to_bytes
from quakestack.models.registry import get_architecture
from quakestack.storage import ObjectStore
from quakestack.training.data import check_compatible, fetch_split, load_manifest, load_split
from quakestack.training.loop import run_training

EVENT_PREFIX = "@@qs "
_stdout_lock = threading.Lock()


def emit(event: dict[str, Any]) -> None:
    line = EVENT_PREFIX + json.dumps(event, default=_json_default)
    with _stdout_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def job_key(job_id: str, name: str) -> str:
    return f"jobs/{job_id}/{name}"


def checkpoint_key(job_id: str, label: str) -> str:
    return job_key(job_id, f"checkpoints/{label}.pt")


def resolve_device(requested: str, rank: int = 0) -> torch.device:
    if requested in ("", "auto"):
        return torch.device(f"cuda:{rank}") if torch.cuda.is_available() else torch.device("cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {requested} requested but no CUDA device is available")
        index = int(requested.split(":")[1]) if ":" in requested else 0
        return torch.device(f"cuda:{index + rank}")
    return torch.device("cpu")


def world_size(job: dict[str, Any]) -> int:
    hp = job["training_hyper_parameters"]
    device = resolve_device(job.get("device", "auto"))
    if device.type == "cuda":
        return max(1, int(hp.get("num_gpus", 1) or 1))
    return max(1, int(hp.get("ddp_processes", 1)))


class SharedControl:
    """Target epochs and stop flag shared between the stdin reader and the rank processes."""

    def __init__(self, ctx: Any, epochs: int):
        self._epochs = ctx.Value("i", epochs)
        self._stop = ctx.Value("b", 0)

    def target_epochs(self) -> int:
        return int(self._epochs.value)

    def stop_requested(self) -> bool:
        return bool(self._stop.value)

    def apply(self, command: dict[str, Any]) -> None:
        if "epochs" in command:
            self._epochs.value = int(command["epochs"])
        if command.get("stop"):
            self._stop.value = 1


def read_commands(control: SharedControl) -> None:
    """Apply stdin commands; on end of input the service is gone, so leave at once."""
    for line in sys.stdin:
        line = line.strip()
        if line:
            try:
                control.apply(json.loads(line))
            except (ValueError, TypeError):
                get_logger().warning("ignored a malformed command")
    os._exit(3)


def _rank_main(rank: int, world: int, job: dict[str, Any], dirs: dict[str, list[str]], control: SharedControl,
               port: int) -> None:
    settings = load_settings()
    configure("trainer-worker", settings.log_level, settings.log_format)
    device = resolve_device(job.get("device", "auto"), rank)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, rank=rank, world_size=world)
        if device.type == "cuda":
            torch.cuda.set_device(device)
    if device.type == "cpu" and world > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    store = ObjectStore.from_settings(settings)
    spec = get_architecture(job["architecture"])
    arch_hp = job["hyper_parameters"]
    input_spec = spec.input_spec_for(arch_hp)
    manifest = job["_manifest"]
    normalization = manifest.get("normalization", "none")
    train = load_split([Path(d) for d in dirs["train"]], spec, input_spec, manifest, normalization)
    val = load_split([Path(d) for d in dirs["val"]], spec, input_spec, manifest, normalization)
    from quakestack.models.registry import build_model
    from quakestack.training.loop import seed_everything

    seed_everything(int(job["training_hyper_parameters"]["seed"]))  # weight init is part of the run's seed
    model, _, _ = build_model(job["architecture"], arch_hp)
    resume = None
    if job.get("resume_from"):
        resume = load_state(store.get_bytes(checkpoint_key(job["job_id"], job["resume_from"])))

    def save_checkpoint(label: str, state: dict[str, Any]) -> None:
        store.put_bytes(checkpoint_key(job["job_id"], label), state_to_bytes(state))

    result = run_training(
        model=model, spec=spec, arch_hparams=arch_hp, hp=job["training_hyper_parameters"], train=train, val=val,
        device=device, control=control, emit=emit, save_checkpoint=save_checkpoint, resume=resume,
        elapsed_before_s=float(job.get("elapsed_s", 0.0)), rank=rank, world=world)
    if rank == 0:
        emit({"type": "done", "state": result.state, "message": result.message, "epochs_done": result.epochs_done})
    if world > 1:
        torch.distributed.destroy_process_group()


def run(job_id: str) -> int:
    settings = load_settings()
    configure("trainer-worker", settings.log_level, settings.log_format)
    log = get_logger(job_id=job_id)
    store = ObjectStore.from_settings(settings)
    job = store.get_json(job_key(job_id, "job.json"))
    ctx = torch.multiprocessing.get_context("spawn")
    control = SharedControl(ctx, int(job["epochs"]))
    threading.Thread(target=read_commands, args=(control,), daemon=True, name="commands").start()
    try:
        spec = get_architecture(job["architecture"])
        manifest, manifest_sha = load_manifest(store, job["dataset"])
        check_compatible(spec, spec.input_spec_for(job["hyper_parameters"]), manifest)
        job["_manifest"] = manifest
        cache = Path(settings.cache_dir)
        dirs = {split: [str(d) for d in fetch_split(store, job["dataset"], manifest, split, cache, manifest_sha)]
                for split in ("train", "val")}
        world = world_size(job)
        emit({"type": "running", "world_size": world, "p_offset_s": p_offset_s(store, job, manifest, dirs)})
        log.info("training", world_size=world, dataset=job["dataset"], architecture=job["architecture"])
        if world == 1:
            _rank_main(0, 1, job, dirs, control, 0)
        else:
            torch.multiprocessing.start_processes(_rank_main, args=(world, job, dirs, control, free_ports(1)[0]),
                                                  nprocs=world, start_method="spawn")
    except Exception as exc:  # noqa: BLE001 - any failure ends the job FAILED with its reason
        log.error("training failed", error=str(exc), traceback=traceback.format_exc())
        emit({"type": "failed", "error": _reason(exc)})
        return 1
    return 0


def p_offset_s(store: ObjectStore, job: dict[str, Any], manifest: dict[str, Any], dirs: dict[str, list[str]]
               ) -> float | None:
    """Where P sits in the training windows (median over the train split), for serving the model."""
    import numpy as np
    import pandas as pd

    samples = [pd.read_csv(Path(d) / "metadata.csv", usecols=["trace_p_arrival_sample"]).trace_p_arrival_sample
               for d in dirs["train"]]
    values = pd.to_numeric(pd.concat(samples), errors="coerce").dropna() if samples else []
    if not len(values):
        return None
    return round(float(np.median(values)) / float(manifest["sampling_rate"]), 3)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job-id", required=True)
    args = parser.parse_args()
    sys.exit(run(args.job_id))


if __name__ == "__main__":
    main()
