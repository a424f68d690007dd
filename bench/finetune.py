"""Fine-tuning a SeisBench PhaseNet: the trainer service against SeisBench's own training pipeline, and the
benchmark tasks (Münchmeyer et al. 2022) of the imported, fine-tuned and from-scratch models.

1. Two synthetic STEAD networks are ingested through the data service: A (the defaults) and B (S at 3.0
   km/s instead of 3.5, three times the noise), 31 s windows at 100 Hz.
2. "Pretrained": a SeisBench PhaseNet trained on A's train split with SeisBench's documented pipeline
   (``WaveformDataset`` → ``GenericGenerator`` with a window, ``Normalize``, ``ProbabilisticLabeller`` →
   ``DataLoader``; its examples' loss), saved with ``save`` and imported through ``ImportModel``.
3. The same weights fine-tuned on B, the same epochs, batch size and learning rate, (a) by a training job with
   ``initial_model`` and (b) by SeisBench's pipeline on B's train split written as a SeisBench dataset; and a
   from-scratch job on B. Throughput is windows (each with its P and S picks) per second of training steps:
   the job's reported ``samples_per_s`` and the loop's windows over its epoch time (data loading included on
   both sides: the job slices in-memory blocks, SeisBench's generator reads and labels per window), the first
   epoch of each segment a warm-up. Throughput is measured in alternating segments (the job, then the loop,
   then the job resumed and the loop continued, ...): the ratio is the median over segment pairs of
   median(job epochs) / median(loop epochs), so other work on the machine weighs on both sides alike.
4. ``EvaluateModel`` on B's test split for the imported, the job's fine-tuned, the SeisBench-loop fine-tuned
   (imported too) and the from-scratch versions: one table of the benchmark tasks.

Prints one JSON object as its last line.

    python bench/finetune.py [--quick] [--workers N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from google.protobuf import struct_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.seisbench_loop import fit, plain_phasenet, write_split  # noqa: E402
from bench.support.stead import ingest_stead  # noqa: E402
from quakestack.cli.models import import_requests  # noqa: E402
from quakestack.client import channel  # noqa: E402
from quakestack.config import load_settings  # noqa: E402
from quakestack.data.synthetic import write_stead  # noqa: E402
from quakestack.metadata.database import Database  # noqa: E402
from quakestack.metadata.datasets import DatasetCatalog  # noqa: E402
from quakestack.stack import Stack, with_free_ports  # noqa: E402
from quakestack.storage import ObjectStore  # noqa: E402
from quakestack.training.benchmark_tasks import as_row  # noqa: E402
from quakestack.v1 import common_pb2, data_pb2, trainer_pb2, trainer_pb2_grpc  # noqa: E402

WINDOW_S = 31.0
NETWORK_B = {"vs_km_s": 3.0, "noise_scale": 3.0}


def ingest(addr: str, source: Path, name: str) -> None:
    """A STEAD folder as 31 s windows with noise, split 70/15/15."""
    ingest_stead(addr, source, name, timeout_s=900,
                 window=data_pb2.WindowSpec(length_s=WINDOW_S, include_noise=True),
                 split=data_pb2.SplitSpec(train=0.7, val=0.15, test=0.15))


def import_saved(registry: trainer_pb2_grpc.ModelRegistryServiceStub, name: str, model, directory: Path) -> None:
    model.save(directory / name)
    weights = (directory / f"{name}.pt").read_bytes()
    registry.ImportModel(import_requests(name, "PhaseNet", (directory / f"{name}.json").read_text(), weights,
                                         hashlib.sha256(weights).hexdigest()), timeout=120)


def epoch_rates(trainer: trainer_pb2_grpc.TrainerServiceStub, job_id: str, after: int = 0) -> list[float]:
    """The job's samples/s of the epochs after `after`, once it has ended (SUCCEEDED, else exit)."""
    rates = [e.epoch.samples_per_s for e in trainer.StreamTrainingProgress(
        trainer_pb2.StreamTrainingProgressRequest(job_id=job_id), timeout=3600)
        if e.WhichOneof("event") == "epoch" and e.epoch.epoch > after]
    final = trainer.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=job_id), timeout=30).job
    if final.state != common_pb2.JOB_STATE_SUCCEEDED:
        raise SystemExit(f"training job {job_id} failed: {final.error}")
    return rates


def train_job(trainer: trainer_pb2_grpc.TrainerServiceStub, registry: trainer_pb2_grpc.ModelRegistryServiceStub,
              name: str, hp: dict, initial: str = "") -> tuple[str, list[float]]:
    """A job on B (fine-tuning `initial`, or from scratch), registered as `name`; its id and samples/s per epoch."""
    values = struct_pb2.Struct()
    values.update(hp)
    request = trainer_pb2.CreateTrainingJobRequest(dataset="net-b", hyper_parameters=values,
                                                   architecture="" if initial else "seisbench_phasenet")
    if initial:
        request.initial_model.CopyFrom(trainer_pb2.ModelRef(name=initial))
    job = trainer.CreateTrainingJob(request, timeout=60).job
    rates = epoch_rates(trainer, job.job_id)
    registry.RegisterModel(trainer_pb2.RegisterModelRequest(
        name=name, source=trainer_pb2.CheckpointRef(job_id=job.job_id, epoch=int(hp["epochs"]))), timeout=60)
    return job.job_id, rates


def more_epochs(trainer: trainer_pb2_grpc.TrainerServiceStub, job_id: str, done: int, epochs: int) -> list[float]:
    """The job resumed for `epochs` more (a new worker: its first epoch is a warm-up, as a new loop's)."""
    trainer.ResumeTrainingJob(trainer_pb2.ResumeTrainingJobRequest(job_id=job_id, epochs=done + epochs), timeout=60)
    return epoch_rates(trainer, job_id, after=done)


def evaluate(trainer: trainer_pb2_grpc.TrainerServiceStub, name: str) -> dict[str, float]:
    response = trainer.EvaluateModel(trainer_pb2.EvaluateModelRequest(
        registered_model=trainer_pb2.ModelRef(name=name), dataset="net-b", split="test"), timeout=600)
    return {"windows": response.windows, **as_row({m.name: m.value for m in response.metrics if not m.values})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller networks and fewer epochs (< 90 s on 2 cores)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of SeisBench's pipeline "
                        "(its examples use 4; 0 loads in the training process, as the job does)")
    args = parser.parse_args()
    a_events, b_events, pre_epochs, epochs, extra_pairs = (100, 80, 2, 3, 0) if args.quick else (300, 200, 8, 4, 2)
    hp = {"epochs": epochs, "learning_rate": 0.005, "batch_size": 32, "weight_decay": 0.0}
    root = Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    started = time.monotonic()
    for name, count, seed, extra in (("net-a", a_events, 1, {}), ("net-b", b_events, 2, NETWORK_B)):
        write_stead(str(root / "source" / name), n_events=count, n_noise=count // 8, seed=seed, **extra)
    settings = with_free_ports(load_settings({})).replace(
        storage_dir=str(root / "s3"), cache_dir=str(root / "cache"), data_allowed_dirs=(root / "source",),
        log_level="warning", device="cpu")
    stack = Stack(settings, state_dir=root)
    try:
        stack.start(90.0, names=("data", "trainer"))
        for name in ("net-a", "net-b"):
            ingest(stack.settings.data_addr, root / "source" / name, name)
        store = ObjectStore.from_settings(stack.settings)
        catalog = DatasetCatalog(Database.from_settings(stack.settings))
        sb_a = write_split(store, catalog, "net-a", "train", root / "sb-cache", root / "sb-a")
        sb_b = write_split(store, catalog, "net-b", "train", root / "sb-cache", root / "sb-b")
        pretrained = plain_phasenet(seed=0)
        fit(pretrained, sb_a, epochs=pre_epochs, lr=hp["learning_rate"], batch_size=hp["batch_size"],
            workers=args.workers)
        print(f"pretrained on net-a ({pre_epochs} epochs, SeisBench's pipeline) in {time.monotonic() - started:.0f} s",
              flush=True)
        with channel(stack.settings.trainer_addr) as ch:
            trainer, registry = trainer_pb2_grpc.TrainerServiceStub(ch), trainer_pb2_grpc.ModelRegistryServiceStub(ch)
            import_saved(registry, "imported", pretrained, root)
            job_id, service = train_job(trainer, registry, "finetuned", hp, initial="imported")
            loop_model = plain_phasenet(seed=0)
            loop_model.load_state_dict(pretrained.state_dict())
            loop = fit(loop_model, sb_b, epochs=epochs, lr=hp["learning_rate"], batch_size=hp["batch_size"],
                       workers=args.workers).windows_per_s
            import_saved(registry, "seisbench-loop", loop_model, root)
            pairs = [(service, loop)]
            done = epochs
            for _ in range(extra_pairs):  # alternate segments, so that other work on the machine weighs on both
                more = more_epochs(trainer, job_id, done, epochs)
                done += epochs
                pairs.append((more, fit(loop_model, sb_b, epochs=epochs, lr=hp["learning_rate"],
                                        batch_size=hp["batch_size"], workers=args.workers).windows_per_s))
            train_job(trainer, registry, "scratch", hp)
            rows = {name: evaluate(trainer, name) for name in ("imported", "finetuned", "seisbench-loop", "scratch")}
    finally:
        stack.stop()
    # the first epoch of each segment is a warm-up; a pair's ratio is of its segments' median epochs, and the
    # ratio is the median over pairs (a machine busy with other work weighs on both sides alike)
    ratios = [statistics.median(a[1:]) / statistics.median(b[1:]) for a, b in pairs]
    service_rate = statistics.median([r for a, _ in pairs for r in a[1:]])
    loop_rate = statistics.median([r for _, b in pairs for r in b[1:]])
    columns = ("detection_auc", "detection_mcc", "phase_mcc", "onset_mae_s", "p_onset_mae_s", "s_onset_mae_s",
               "p_onset_within_0_1s", "s_onset_within_0_1s")
    print(f"\nnet-b test split ({rows['imported']['windows']} windows): benchmark tasks")
    print(f"{'model':<16}" + "".join(f"{c:>21}" for c in columns))
    for name, row in rows.items():
        print(f"{name:<16}" + "".join(f"{row.get(c, float('nan')):>21.3f}" for c in columns))
    print(f"\nfine-tuning windows/s (median epoch, warm-ups left out): service {service_rate:.1f}, SeisBench "
          f"pipeline {loop_rate:.1f}; segments (service, SeisBench): "
          + "; ".join(f"{[round(r, 1) for r in a]} / {[round(r, 1) for r in b]}" for a, b in pairs))
    summary = {"ratio": round(statistics.median(ratios), 3), "pair_ratios": [round(r, 3) for r in ratios],
               "service_windows_per_s": round(service_rate, 2),
               "seisbench_windows_per_s": round(loop_rate, 2), "epochs": epochs, "quick": args.quick,
               "workers": args.workers, "wall_s": round(time.monotonic() - started, 1)}
    for name in ("finetuned", "imported", "scratch", "seisbench-loop"):
        for key in ("onset_mae_s", "detection_mcc"):
            summary[f"{name.replace('-', '_')}_{key}"] = round(rows[name].get(key, float("nan")), 4)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
