"""Dynamic batching: 32 concurrent gRPC clients sending single windows versus the in-process limit.

The in-process limit is the same ConvNetQuake-INGV (STEAD 60 s windows) run on pre-built batches of
the max batch size in this process. ``ratio`` = Predict throughput / that limit (goal >= 0.6 on 2
cores); ``oip_ratio`` = the same load sent by tritonclient through the Open Inference Protocol's
ModelInfer / that limit (goal: within 10% of ``ratio``); ``gain`` = Predict with batching / the same
service with max batch size 1. ``ceiling_ratio`` = the same 32 clients calling the same server's cheapest
unary (grpc.health.v1 Health/Check: no payload, no model, the same interceptors) / that limit: no
Predict, however cheap, can beat it on this machine. ``*_server_cpu_ms_per_request`` is the inference process's CPU time
(all threads, model included, from /proc) divided by the requests it answered. ``--profile DIR``
records the server with py-spy during the batched Predict run. Prints one JSON object as its last line.

    python bench/batching.py [--quick] [--profile DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.support.clients import CLIENTS, EMPTY_CALL, PROCESSES, Clients, cpu_seconds  # noqa: E402
from bench.support.stack import running_stack  # noqa: E402
from quakestack.client import channel  # noqa: E402
from quakestack.model_store import ModelStore  # noqa: E402
from quakestack.models.zoo import build_model  # noqa: E402
from quakestack.runtime.memory import keep_freed_memory  # noqa: E402
from quakestack.v1 import inference_pb2, inference_pb2_grpc  # noqa: E402

ARCH, MAX_BATCH = "convnetquake_ingv", 32
REPO_ROOT = Path(__file__).resolve().parent.parent
TRITON_PYTHON = REPO_ROOT / ".venv-triton" / "bin" / "python"
OIP_LOAD = REPO_ROOT / "bench" / "support" / "oip_load.py"


def oip_windows_per_s(target: str, name: str, seconds: float) -> float:
    """The same load (CLIENTS single-window clients over PROCESSES processes) through tritonclient.grpc."""
    start_at = time.time() + 4.0  # after every process imported tritonclient and warmed up
    procs = [subprocess.Popen([str(TRITON_PYTHON), str(OIP_LOAD), target, name, str(CLIENTS // PROCESSES),
                               str(seconds), str(start_at)], stdout=subprocess.PIPE, text=True)
             for _ in range(PROCESSES)]
    counts = [int(p.communicate(timeout=seconds + 120)[0].strip().splitlines()[-1]) for p in procs]
    return sum(counts) / seconds


class Profiler:
    """The server process while one run lasts: py-spy's GIL holders (where the Python time goes) and,
    where ``perf`` exists, perf's native CPU samples of every thread (grpc core, protobuf, torch, kernel)."""

    def __init__(self, out_dir: str | None, pid: int, seconds: float):
        self.procs: list[subprocess.Popen] = []
        self.out_dir, self.pid, self.seconds = out_dir, pid, seconds

    def start(self) -> None:
        if not self.out_dir:
            return
        out = Path(self.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        duration = str(max(1, int(self.seconds) - 1))
        commands = [["py-spy", "record", "-p", str(self.pid), "-d", duration, "-r", "100", "--threads", "--gil",
                     "-f", "raw", "-o", str(out / "server.collapsed")]]
        if shutil.which("perf"):
            commands.append(["perf", "record", "-F", "499", "-g", "-p", str(self.pid), "-o", str(out / "perf.data"),
                             "--", "sleep", duration])
        self.procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in commands]

    def finish(self) -> None:
        for proc in self.procs:
            proc.wait(timeout=120)


def bench_model() -> tuple[torch.nn.Module, bytes, dict]:
    """The benchmarked model (seed 0): the module, its weights as the registry stores them, its card."""
    torch.manual_seed(0)
    model, _, spec = build_model(ARCH, {})
    model.eval()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    card = {"architecture": ARCH, "task": "magnitude", "hyper_parameters": {}, "input_spec": spec.to_dict(),
            "class_names": [], "normalization": "none", "metrics": {}}
    return model, buf.getvalue(), card


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (< 60 s in all)")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the server during the batched Predict run")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="QUAKESTACK_INFERENCE_TORCH_THREADS of the server (0: half the CPUs)")
    parser.add_argument("--glibc-malloc", action="store_true",
                        help="QUAKESTACK_KEEP_FREED_MEMORY=false: the server frees to the kernel as glibc does")
    parser.add_argument("--log-data-plane-calls", action="store_true",
                        help="QUAKESTACK_LOG_DATA_PLANE_CALLS=true: one JSON line per successful Predict (before)")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 20.0
    model, weights, card = bench_model()
    keep_freed_memory()  # the limit is the best this process can do, whatever the server is told
    before = in_process(model, seconds)
    with running_stack(inference_log_sample_rate=0.0, inference_torch_threads=args.torch_threads,
                       log_data_plane_calls=args.log_data_plane_calls,
                       keep_freed_memory=not args.glibc_malloc) as stack:
        registry = ModelStore.from_settings(stack.settings)
        for name in ("batched", "unbatched"):
            registry.register(name, weights, card)
        target = stack.settings.inference_addr
        with channel(target) as ch:
            stub = inference_pb2_grpc.InferenceServiceStub(ch)
            stub.LoadModel(inference_pb2.LoadModelRequest(name="batched", max_batch_size=MAX_BATCH), timeout=60)
            stub.LoadModel(inference_pb2.LoadModelRequest(name="unbatched", max_batch_size=1), timeout=60)
            pid = stack.processes["inference"].pid
            clients = Clients(target)
            try:
                cpu = cpu_seconds(pid)
                profiler = Profiler(args.profile, pid, seconds)
                batched = clients.windows_per_s("batched", seconds, on_start=profiler.start)
                profiler.finish()
                predict_cpu_ms = (cpu_seconds(pid) - cpu) * 1e3 / max(1.0, batched * seconds)
                client_cpu_ms = clients.last_cpu_s * 1e3 / max(1.0, batched * seconds)
                unbatched = clients.windows_per_s("unbatched", seconds)
                cpu = cpu_seconds(pid)
                empty = clients.windows_per_s(EMPTY_CALL, seconds)
                empty_server_cpu_ms = (cpu_seconds(pid) - cpu) * 1e3 / max(1.0, empty * seconds)
                empty_client_cpu_ms = clients.last_cpu_s * 1e3 / max(1.0, empty * seconds)
            finally:
                clients.close()
            oip, oip_cpu_ms, oip_client_cpu_ms = None, None, None
            if TRITON_PYTHON.exists():
                cpu, children = cpu_seconds(pid), resource.getrusage(resource.RUSAGE_CHILDREN)
                oip = oip_windows_per_s(target, "batched", seconds)
                oip_cpu_ms = (cpu_seconds(pid) - cpu) * 1e3 / max(1.0, oip * seconds)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                oip_client_cpu_ms = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) \
                    * 1e3 / max(1.0, oip * seconds)  # includes the clients' start-up (imports, warm-up)
            served = {m.name: m for m in stub.ListLoadedModels(inference_pb2.ListLoadedModelsRequest()).models}
    limit = before if args.quick else max(before, in_process(model, seconds))
    mean_batch = served["batched"].windows_served / max(1, served["batched"].batches_served)
    print(json.dumps({"bench": "batching", "model": ARCH, "clients": CLIENTS, "max_batch_size": MAX_BATCH,
                      "service_windows_per_s": round(batched, 1), "unbatched_windows_per_s": round(unbatched, 1),
                      "oip_windows_per_s": None if oip is None else round(oip, 1),
                      "in_process_windows_per_s": round(limit, 1), "mean_batch_size": round(mean_batch, 2),
                      "ratio": round(batched / limit, 3), "oip_ratio": None if oip is None else round(oip / limit, 3),
                      "oip_vs_predict": None if oip is None else round(oip / batched, 3),
                      "gain": round(batched / unbatched, 3),
                      "predict_server_cpu_ms_per_request": round(predict_cpu_ms, 3),
                      "oip_server_cpu_ms_per_request": None if oip_cpu_ms is None else round(oip_cpu_ms, 3),
                      "predict_client_cpu_ms_per_request": round(client_cpu_ms, 3),
                      "oip_client_cpu_ms_per_request": oip_client_cpu_ms and round(oip_client_cpu_ms, 3),
                      "empty_calls_per_s": round(empty, 1),
                      "empty_server_cpu_ms_per_request": round(empty_server_cpu_ms, 3),
                      "empty_client_cpu_ms_per_request": round(empty_client_cpu_ms, 3),
                      "ceiling_ratio": round(empty / limit, 3),
                      "server_torch_threads": args.torch_threads, "log_data_plane_calls": args.log_data_plane_calls,
                      "keep_freed_memory": not args.glibc_malloc,
                      "goal_ratio": 0.6,
                      "met": batched / limit >= 0.6 and (oip is None or oip >= 0.9 * batched)}))


if __name__ == "__main__":
    main()
