"""Dynamic batching: 32 concurrent gRPC clients sending single windows versus the in-process limit.

The in-process limit is the same ConvNetQuake-INGV (STEAD 60 s windows) run on pre-built batches of
the max batch size in this process. ``ratio`` = service throughput / that limit (goal >= 0.8);
``gain`` = service throughput with batching / the same service with max batch size 1. Prints one
JSON object as its last line.

    python bench/batching.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.stack import running_stack  # noqa: E402
from quakestack.client import channel  # noqa: E402
from quakestack.models.registry import build_model  # noqa: E402
from quakestack.registry import ModelRegistry  # noqa: E402
from quakestack.storage import ObjectStore  # noqa: E402
from quakestack.v1 import common_pb2, inference_pb2, inference_pb2_grpc  # noqa: E402

ARCH, CLIENTS, MAX_BATCH, PROCESSES = "convnetquake_ingv", 32, 32, 4


def in_process(model: torch.nn.Module, seconds: float) -> float:
    """The best of torch's default intra-op threads and one thread (one wins on a busy machine)."""
    default = torch.get_num_threads()
    rates = []
    for threads in sorted({default, 1}):
        torch.set_num_threads(threads)
        rates.append(_in_process(model, seconds / 2))
    torch.set_num_threads(default)
    return max(rates)


def _in_process(model: torch.nn.Module, seconds: float) -> float:
    x = torch.randn(MAX_BATCH, 3, 6000) * 1000
    with torch.inference_mode():
        model(x)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model(x)
            n += MAX_BATCH
    return n / (time.perf_counter() - start)


def _client_process(target: str, threads: int, jobs, ready, out) -> None:
    """``threads`` clients in one process; each job (model, seconds, go event) runs them all once."""
    x = (np.random.default_rng(0).standard_normal((1, 3, 6000)) * 1000).astype("<f4")
    waveforms = common_pb2.Waveforms(data=x.tobytes(), shape=[1, 3, 6000], sampling_rate_hz=100.0,
                                     component_order="ZNE")
    with channel(target) as ch:
        stub = inference_pb2_grpc.InferenceServiceStub(ch)
        while (job := jobs.get()) is not None:
            name, seconds, go = job
            request = inference_pb2.PredictRequest(model=name, windows=waveforms)
            stub.Predict(request, timeout=60)
            counts = [0] * threads
            ready.put(1)
            go.wait()
            end = time.time() + seconds

            def client(i: int, request=request, end=end, counts=counts) -> None:
                while time.time() < end:
                    stub.Predict(request, timeout=60)
                    counts[i] += 1

            pool = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            out.put(sum(counts))


class Clients:
    """CLIENTS concurrent clients spread over PROCESSES processes (so the client GIL is no limit)."""

    def __init__(self, target: str):
        self.ctx = mp.get_context("spawn")
        self.manager = self.ctx.Manager()
        self.jobs = [self.ctx.Queue() for _ in range(PROCESSES)]
        self.ready, self.out = self.ctx.Queue(), self.ctx.Queue()
        self.procs = [self.ctx.Process(target=_client_process,
                                       args=(target, CLIENTS // PROCESSES, q, self.ready, self.out))
                      for q in self.jobs]
        for p in self.procs:
            p.start()

    def windows_per_s(self, name: str, seconds: float) -> float:
        go = self.manager.Event()
        for q in self.jobs:
            q.put((name, seconds, go))
        for _ in self.procs:
            self.ready.get()
        go.set()
        return sum(self.out.get() for _ in self.procs) / seconds

    def close(self) -> None:
        for q in self.jobs:
            q.put(None)
        for p in self.procs:
            p.join()
        self.manager.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (< 60 s in all)")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 20.0
    torch.manual_seed(0)
    model, _, spec = build_model(ARCH, {})
    model.eval()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    card = {"architecture": ARCH, "task": "magnitude", "hyper_parameters": {}, "input_spec": spec.to_dict(),
            "class_names": [], "normalization": "none", "metrics": {}}
    before = in_process(model, seconds)
    with running_stack(inference_log_sample_rate=0.0) as stack:
        registry = ModelRegistry(ObjectStore.from_settings(stack.settings))
        for name in ("batched", "unbatched"):
            registry.register(name, buf.getvalue(), card)
        target = stack.settings.inference_addr
        with channel(target) as ch:
            stub = inference_pb2_grpc.InferenceServiceStub(ch)
            stub.LoadModel(inference_pb2.LoadModelRequest(name="batched", max_batch_size=MAX_BATCH), timeout=60)
            stub.LoadModel(inference_pb2.LoadModelRequest(name="unbatched", max_batch_size=1), timeout=60)
            clients = Clients(target)
            try:
                batched = clients.windows_per_s("batched", seconds)
                unbatched = clients.windows_per_s("unbatched", seconds)
            finally:
                clients.close()
            served = {m.name: m for m in stub.ListLoadedModels(inference_pb2.ListLoadedModelsRequest()).models}
    limit = before if args.quick else max(before, in_process(model, seconds))
    mean_batch = served["batched"].windows_served / max(1, served["batched"].batches_served)
    print(json.dumps({"bench": "batching", "model": ARCH, "clients": CLIENTS, "max_batch_size": MAX_BATCH,
                      "service_windows_per_s": round(batched, 1), "unbatched_windows_per_s": round(unbatched, 1),
                      "in_process_windows_per_s": round(limit, 1), "mean_batch_size": round(mean_batch, 2),
                      "ratio": round(batched / limit, 3), "gain": round(batched / unbatched, 3)}))


if __name__ == "__main__":
    main()
