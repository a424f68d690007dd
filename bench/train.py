"""Training throughput: a training job of the service versus a bare in-memory PyTorch loop.

Same model (ConvNetQuake-INGV, 3000-sample windows), same data, same batch size and optimizer,
same number of steps. (a) goes the whole way: synthetic STEAD files ingested by the data service,
shards downloaded into the trainer's cache (sha256-checked), read as blocks, batches sliced,
checkpoints written every epoch and metrics streamed to a subscriber; its samples/s are what the
job reports per epoch. (b) loads the same shards into memory and runs forward/backward/step.
The two run in alternating segments (the job resumed for a few more epochs, then the bare loop
for as many, then the other way round), the first epoch of each segment a warm-up; the ratio is
the median of the segment pairs' ratios, so that a machine busy with other work weighs on both
sides alike. Prints one JSON object as its last line.

    python bench/train.py [--quick] [--device cpu|cuda] [--amp]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from google.protobuf import struct_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.stead import ingest_stead  # noqa: E402
from quakestack.client import channel  # noqa: E402
from quakestack.config import load_settings  # noqa: E402
from quakestack.data.manifest import load_manifest  # noqa: E402
from quakestack.data.synthetic import write_stead  # noqa: E402
from quakestack.metadata.database import Database  # noqa: E402
from quakestack.metadata.datasets import DatasetCatalog  # noqa: E402
from quakestack.models.losses import compute_loss  # noqa: E402
from quakestack.models.zoo import build_model, get_architecture  # noqa: E402
from quakestack.stack import Stack, with_free_ports  # noqa: E402
from quakestack.storage import ObjectStore  # noqa: E402
from quakestack.training.data import fetch_split, load_split  # noqa: E402
from quakestack.v1 import common_pb2, trainer_pb2, trainer_pb2_grpc  # noqa: E402

ARCH, HP = "convnetquake_ingv", {"n_samples": 3000}
BATCH, LR = 32, 1e-3


class ServiceJob:
    """One training job of the service, trained in segments: each segment resumes it for `1 + epochs` more
    epochs (a new worker; its first epoch is a warm-up) and returns the samples/s the job reported."""

    def __init__(self, addr: str, device: str, amp: bool):
        self.addr, self.device, self.amp = addr, device, amp
        self.job_id = ""
        self.done = 0
        self.wall_s = 0.0

    def segment(self, epochs: int) -> list[float]:
        target = self.done + 1 + epochs
        with channel(self.addr) as ch:
            stub = trainer_pb2_grpc.TrainerServiceStub(ch)
            started = time.perf_counter()
            if not self.job_id:
                hp = struct_pb2.Struct()
                hp.update({**HP, "batch_size": BATCH, "learning_rate": LR, "epochs": target,
                           "mixed_precision": self.amp})
                self.job_id = stub.CreateTrainingJob(trainer_pb2.CreateTrainingJobRequest(
                    dataset="bench-train", architecture=ARCH, hyper_parameters=hp, device=self.device),
                    timeout=60).job.job_id
            else:
                stub.ResumeTrainingJob(trainer_pb2.ResumeTrainingJobRequest(job_id=self.job_id, epochs=target),
                                       timeout=60)
            rates = {e.epoch.epoch: e.epoch.samples_per_s for e in stub.StreamTrainingProgress(
                trainer_pb2.StreamTrainingProgressRequest(job_id=self.job_id), timeout=1800)
                     if e.WhichOneof("event") == "epoch"}
            self.wall_s += time.perf_counter() - started
            final = stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=self.job_id)).job
            if final.state != common_pb2.JOB_STATE_SUCCEEDED or final.epochs_done != target:
                raise SystemExit(f"training failed: {final.error} (epochs {final.epochs_done} of {target})")
        segment = [rates[e] for e in range(self.done + 2, target + 1)]  # the worker's first epoch: warm-up
        self.done = target
        return segment


class BareLoop:
    """Forward, backward, step over in-memory tensors: nothing else (model and optimizer kept between segments)."""

    def __init__(self, store: ObjectStore, catalog: DatasetCatalog, cache: Path, device: str, amp: bool):
        self.spec = get_architecture(ARCH)
        self.model, arch_hp, input_spec = build_model(ARCH, HP)
        manifest, sha = load_manifest(store, catalog, "bench-train")
        data = load_split(fetch_split(store, "bench-train", manifest, "train", cache, sha), self.spec, input_spec,
                          manifest, "none")
        self.device = torch.device("cuda" if device.startswith("cuda") else "cpu")
        self.amp = amp
        self.x = torch.from_numpy(data.x).to(self.device)
        self.targets = {k: torch.from_numpy(v).to(self.device) for k, v in data.targets.items()}
        self.model.to(self.device).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR, weight_decay=5e-4)
        self.loss_name = self.spec.loss_for(arch_hp)
        self.epoch = 0

    def segment(self, epochs: int) -> list[float]:
        rates = [self._epoch() for _ in range(1 + epochs)]
        return rates[1:]  # as the service's: the first epoch of a segment is a warm-up

    def _epoch(self) -> float:
        self.epoch += 1
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(self.epoch)).to(self.device)
        start, seen = time.perf_counter(), 0
        for i in range(0, len(order), BATCH):
            index = order[i:i + BATCH]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                outputs = self.model(self.x[index])
            loss = compute_loss(self.loss_name, {k: v.float() for k, v in outputs.items()},
                                {k: v[index] for k, v in self.targets.items()})
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            seen += len(index)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer traces and pairs (< 60 s on 2 cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="mixed precision (bf16 autocast)")
    args = parser.parse_args()
    traces, pairs, epochs = (600, 5, 5) if args.quick else (2000, 3, 4)
    root = Path(tempfile.mkdtemp(prefix="bench-train-"))
    source = root / "source"
    write_stead(str(source), n_events=traces, n_noise=0, seed=3)
    settings = with_free_ports(load_settings({})).replace(storage_dir=str(root / "s3"), cache_dir=str(root / "cache"),
                                                         data_allowed_dirs=(source,), log_level="warning",
                                                         device=args.device)
    stack = Stack(settings, state_dir=root)
    stack.start(names=("data", "trainer"))  # what the benchmark talks to (inference and gateway idle)
    ratios, service_rates, bare_rates = [], [], []
    try:
        ingest_stead(stack.settings.data_addr, source, "bench-train")
        job = ServiceJob(stack.settings.trainer_addr, args.device, args.amp)
        catalog = DatasetCatalog(Database.from_settings(stack.settings))
        bare = BareLoop(ObjectStore.from_settings(stack.settings), catalog, root / "bare-cache", args.device, args.amp)
        for pair in range(pairs):  # alternating order, so that a drift in the machine's load cancels out
            sides = (job, bare) if pair % 2 == 0 else (bare, job)
            rates = {id(side): statistics.median(side.segment(epochs)) for side in sides}
            service_rates.append(rates[id(job)])
            bare_rates.append(rates[id(bare)])
            ratios.append(rates[id(job)] / rates[id(bare)])
    finally:
        stack.stop()
    print(json.dumps({
        "bench": "train", "architecture": ARCH, "windows": traces, "pairs": pairs, "epochs_per_segment": epochs,
        "batch_size": BATCH, "service_samples_per_s": round(statistics.median(service_rates), 1),
        "bare_samples_per_s": round(statistics.median(bare_rates), 1),
        "pair_ratios": [round(r, 3) for r in ratios], "ratio": round(statistics.median(ratios), 3),
        "service_wall_s": round(job.wall_s, 1), "device": args.device, "mixed_precision": args.amp,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
