"""Training throughput: a training job of the service versus a bare in-memory PyTorch loop.

Same model (ConvNetQuake-INGV, 3000-sample windows), same data, same batch size and optimizer,
same number of steps. (a) goes the whole way: synthetic STEAD files ingested by the data service,
shards downloaded into the trainer's cache (sha256-checked), read as blocks, batches sliced,
checkpoints written every epoch and metrics streamed to a subscriber; its samples/s are what the
job reports per epoch. (b) loads the same shards into memory and runs forward/backward/step.
The first epoch of each is a warm-up and is not counted. Prints one JSON object as its last line.

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

from quakestack.client import channel  # noqa: E402
from quakestack.config import load_settings  # noqa: E402
from quakestack.data.manifest import load_manifest  # noqa: E402
from quakestack.data.synthetic import write_stead  # noqa: E402
from quakestack.models.losses import compute_loss  # noqa: E402
from quakestack.models.zoo import build_model, get_architecture  # noqa: E402
from quakestack.stack import Stack, with_free_ports  # noqa: E402
from quakestack.storage import ObjectStore  # noqa: E402
from quakestack.training.data import fetch_split, load_split  # noqa: E402
from quakestack.v1 import common_pb2, data_pb2, data_pb2_grpc, trainer_pb2, trainer_pb2_grpc  # noqa: E402

ARCH, HP = "convnetquake_ingv", {"n_samples": 3000}
BATCH, LR = 32, 1e-3


def ingest(addr: str, source: Path) -> None:
    with channel(addr) as ch:
        stub = data_pb2_grpc.DataServiceStub(ch)
        request = data_pb2.CreateDatasetRequest(name="bench-train", seed=1, shard_size=512, sources=[
            data_pb2.DataSource(format=data_pb2.SOURCE_FORMAT_STEAD,
                                waveforms=common_pb2.Location(local_path=str(source)))])
        job = stub.CreateDataset(request, timeout=30).job
        for event in stub.WatchDatasetJob(data_pb2.WatchDatasetJobRequest(job_id=job.job_id), timeout=600):
            last = event.job
        if last.state != common_pb2.JOB_STATE_SUCCEEDED:
            raise SystemExit(f"ingestion failed: {last.error}")


def service_run(addr: str, epochs: int, device: str, amp: bool) -> tuple[list[float], float]:
    hp = struct_pb2.Struct()
    hp.update({**HP, "batch_size": BATCH, "learning_rate": LR, "epochs": epochs, "mixed_precision": amp})
    with channel(addr) as ch:
        stub = trainer_pb2_grpc.TrainerServiceStub(ch)
        started = time.perf_counter()
        job = stub.CreateTrainingJob(trainer_pb2.CreateTrainingJobRequest(
            dataset="bench-train", architecture=ARCH, hyper_parameters=hp, device=device), timeout=60).job
        rates = [e.epoch.samples_per_s for e in stub.StreamTrainingProgress(
            trainer_pb2.StreamTrainingProgressRequest(job_id=job.job_id), timeout=1800)
                 if e.WhichOneof("event") == "epoch"]
        wall = time.perf_counter() - started
        final = stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=job.job_id)).job
        if final.state != common_pb2.JOB_STATE_SUCCEEDED:
            raise SystemExit(f"training failed: {final.error}")
    return rates, wall


def bare_run(store: ObjectStore, cache: Path, epochs: int, device: str, amp: bool) -> list[float]:
    """Forward, backward, step over in-memory tensors: nothing else."""
    spec = get_architecture(ARCH)
    model, arch_hp, input_spec = build_model(ARCH, HP)
    manifest, sha = load_manifest(store, "bench-train")
    data = load_split(fetch_split(store, "bench-train", manifest, "train", cache, sha), spec, input_spec, manifest,
                      "none")
    torch_device = torch.device("cuda" if device.startswith("cuda") else "cpu")
    x = torch.from_numpy(data.x).to(torch_device)
    targets = {k: torch.from_numpy(v).to(torch_device) for k, v in data.targets.items()}
    model.to(torch_device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=5e-4)
    loss_name = spec.loss_for(arch_hp)
    rates = []
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch)).to(torch_device)
        start, seen = time.perf_counter(), 0
        for i in range(0, len(order), BATCH):
            index = order[i:i + BATCH]
            with torch.autocast(torch_device.type, dtype=torch.bfloat16, enabled=amp):
                outputs = model(x[index])
            loss = compute_loss(loss_name, {k: v.float() for k, v in outputs.items()},
                                {k: v[index] for k, v in targets.items()})
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(index)
        if torch_device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(seen / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer traces and epochs (< 60 s on 2 cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="mixed precision (bf16 autocast)")
    args = parser.parse_args()
    traces, epochs = (600, 3) if args.quick else (2000, 4)
    root = Path(tempfile.mkdtemp(prefix="bench-train-"))
    source = root / "source"
    write_stead(str(source), n_events=traces, n_noise=0, seed=3)
    settings = with_free_ports(load_settings({})).replace(storage_dir=str(root / "s3"), cache_dir=str(root / "cache"),
                                                         data_allowed_dirs=(source,), log_level="warning",
                                                         device=args.device)
    stack = Stack(settings, state_dir=root)
    stack.start()
    try:
        ingest(stack.settings.data_addr, source)
        service_rates, wall = service_run(stack.settings.trainer_addr, epochs, args.device, args.amp)
        store = ObjectStore.from_settings(stack.settings)
        bare_rates = bare_run(store, root / "bare-cache", epochs, args.device, args.amp)
    finally:
        stack.stop()
    service = statistics.median(service_rates[1:])
    bare = statistics.median(bare_rates[1:])
    print(json.dumps({
        "bench": "train", "architecture": ARCH, "windows": traces, "epochs": epochs, "batch_size": BATCH,
        "service_samples_per_s": round(service, 1), "bare_samples_per_s": round(bare, 1),
        "ratio": round(service / bare, 3), "service_wall_s": round(wall, 1), "device": args.device,
        "mixed_precision": args.amp, "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
