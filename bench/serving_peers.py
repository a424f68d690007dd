"""quakestack's inference service against the servers users would pick instead: MLServer and PyTriton.

One registered model (ConvNetQuake-INGV, card normalisation ``std``, so a server that skipped it would
answer differently), the same windows, the same client program (bench/support/peer_load.py:
tritonclient.grpc over the Open Inference Protocol, from ``.venv-triton``) and the same load: 1, 8 and 32
concurrent single-window clients over 4 client processes, each client on a connection of its own, a
closed loop measured for a fixed time after a warm-up. Each server runs alone on the machine, with the same
batching (max batch size 32, 2 ms delay: quakestack's defaults) and the same torch intra-op threads per process:

- quakestack: the inference service of a fresh bench stack, its OIP ModelInfer, with ``inference_processes``
  1, 2 and 4 (``--quick``: 1 and 4; ``--processes``); the best of them is quakestack at each concurrency;
- MLServer 1.7.1 (``.venv-mlserver``): bench/support/mlserver_runtime.py's ``MLModel`` with adaptive
  batching, ``parallel_workers`` 0, 1 and 2 (``--quick``: 0 and 2); the best of them is the Python peer at
  each concurrency;
- PyTriton (``.venv-pytriton``): Triton's C++ front end and dynamic batcher around the same model in its
  infer_fn (bench/support/pytriton_server.py).

The peers build the same module from the registered card and weights (bench/support/peer_model.py). Before
any load, every server answers every window once through the same client and its magnitudes are compared
with quakestack's Predict (max |difference| <= 1e-4); a server that differs is reported and left out of
the ratios. Per server and concurrency: windows/s, p50/p99 latency, server CPU per request (the server's
whole process tree from /proc: MLServer's workers, tritonserver and its Python stub included) and client CPU
per request (the client processes' own, over the measured window only).

The last line is one JSON object: ``ratio_vs_best_python_peer`` and ``ratio_vs_triton`` (quakestack's
windows/s at 32 clients / the peer's; null with a reason when a peer could not run) and
``p99_ratio_vs_best_python_peer`` (quakestack's p99 at 8 clients / the lowest MLServer p99 there).

    python bench/serving_peers.py [--quick] [--processes 1,2,4] [--connections own|shared] [--mlserver-workers 0,1,2]
                                  [--torch-threads N] [--profile DIR [--only-quakestack]]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.batching import Profiler  # noqa: E402
from bench.support.peers import (  # noqa: E402
    MLSERVER_PYTHON,
    PYTRITON_PYTHON,
    TRITON_PYTHON,
    Batching,
    PeerFailed,
    ServerProcess,
    client_pool,
    mlserver,
    pytriton,
    write_model_folder,
)
from bench.support.stack import running_stack  # noqa: E402
from quakestack.client import channel  # noqa: E402
from quakestack.model_store import ModelStore  # noqa: E402
from quakestack.models.zoo import build_model  # noqa: E402
from quakestack.v1 import common_pb2, inference_pb2, inference_pb2_grpc  # noqa: E402

ARCH, MODEL = "convnetquake_ingv", "peer-bench"
N_WINDOWS, TOLERANCE, SEED = 64, 1e-4, 0


@dataclass(frozen=True)
class Plan:
    """What one run measures and for how long."""

    seconds: float
    warmup_s: float
    concurrency: tuple[int, ...]
    mlserver_workers: tuple[int, ...]
    batching: Batching
    connections: str = "own"


def model_weights_and_card() -> tuple[bytes, dict]:
    """ConvNetQuake-INGV (seed 0) as the trainer registers it, with the ``std`` normalisation of its dataset."""
    torch.manual_seed(SEED)
    model, _, spec = build_model(ARCH, {})
    buf = io.BytesIO()
    torch.save(model.eval().state_dict(), buf)
    card = {"architecture": ARCH, "task": "magnitude", "hyper_parameters": {}, "input_spec": spec.to_dict(),
            "class_names": [], "normalization": "std", "metrics": {}}
    return buf.getvalue(), card


def bench_windows(path: Path) -> np.ndarray:
    """N_WINDOWS 60 s windows in counts with a per-component offset: normalisation changes every answer."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((N_WINDOWS, 3, 6000)) * rng.uniform(200, 5000, (N_WINDOWS, 1, 1)) \
        + rng.uniform(-500, 500, (N_WINDOWS, 3, 1))
    x = x.astype(np.float32)
    np.save(path, x)
    return x


def predict(target: str, x: np.ndarray) -> np.ndarray:
    """quakestack's own Predict of every window: the reference answers."""
    with channel(target) as ch:
        stub = inference_pb2_grpc.InferenceServiceStub(ch)
        windows = common_pb2.Waveforms(data=x.astype("<f4").tobytes(), shape=list(x.shape), sampling_rate_hz=100.0,
                                       component_order="ZNE")
        answer = stub.Predict(inference_pb2.PredictRequest(model=MODEL, windows=windows), timeout=120)
    return np.array([p.magnitude for p in answer.predictions], dtype=np.float32)


def measure(name: str, target: str, pid: int, windows: Path, reference: np.ndarray, plan: Plan,
            workdir: Path, extra: dict | None = None, profile: str | None = None) -> dict:
    """One server: the output check, then a closed-loop run per concurrency (``profile``: py-spy and perf
    record the server during the run at the highest concurrency)."""
    with client_pool(target, MODEL, windows, plan.connections) as pool:
        answers = pool.check(workdir / f"{name}-answers.npy")
        diff = float(np.max(np.abs(answers - reference)))
        rows = []
        for clients in plan.concurrency:
            profiler = Profiler(profile if clients == max(plan.concurrency) else None, pid, plan.seconds)
            result = pool.run(clients, plan.seconds, plan.warmup_s, pid, on_start=profiler.start)
            profiler.finish()
            result.extra = dict(extra or {})
            rows.append(result.summary())
            print(f"[serving_peers] {name:12s} {json.dumps(rows[-1])}", flush=True)
    return {"server": name, "max_abs_diff": diff, "outputs_equal": diff <= TOLERANCE, "rows": rows}


def run_quakestack(plan: Plan, workdir: Path, windows: Path, x: np.ndarray, processes: int,
                   profile: str | None = None) -> tuple[dict, np.ndarray, Path]:
    """The service of a fresh bench stack with ``processes`` processes on its port; also writes the registered
    version where the peers load it."""
    weights, card = model_weights_and_card()
    with running_stack(inference_log_sample_rate=0.0, inference_torch_threads=plan.batching.torch_threads,
                       inference_processes=processes) as stack:
        registry = ModelStore.from_settings(stack.settings)
        registry.register(MODEL, weights, card)
        stored = registry.get(MODEL)
        folder = write_model_folder(workdir / "model", stored, registry.weights(stored))
        target = stack.settings.inference_addr
        with channel(target) as ch:
            inference_pb2_grpc.InferenceServiceStub(ch).LoadModel(inference_pb2.LoadModelRequest(
                name=MODEL, max_batch_size=plan.batching.max_batch_size,
                max_queue_delay_us=plan.batching.max_queue_delay_us), timeout=60)
        reference = predict(target, x)
        name = "quakestack" if processes == 1 else f"quakestack-{processes}"
        result = measure(name, target, stack.processes["inference"].pid, windows, reference, plan, workdir,
                         {"processes": processes}, profile=profile)
    return result, reference, folder


def run_peer(name: str, start: Callable[[], contextlib.AbstractContextManager[ServerProcess]], plan: Plan,
             workdir: Path, windows: Path, reference: np.ndarray, extra: dict | None = None) -> dict:
    """A peer from start to stop; an error (the peer would not start or answer) is the result."""
    try:
        with start() as server:
            return measure(name, server.target, server.proc.pid, windows, reference, plan, workdir, extra)
    except (PeerFailed, OSError) as exc:
        print(f"[serving_peers] {name}: cannot run: {exc}", flush=True)
        return {"server": name, "error": str(exc)[-2000:]}


def run_peers(plan: Plan, workdir: Path, windows: Path, reference: np.ndarray, folder: Path) -> list[dict]:
    results = []
    if not MLSERVER_PYTHON.exists():
        results.append({"server": "mlserver", "error": "no .venv-mlserver: run scripts/setup.sh --dev"})
    for workers in plan.mlserver_workers if MLSERVER_PYTHON.exists() else ():
        results.append(run_peer(f"mlserver-{workers}",
                                lambda w=workers: mlserver(workdir, folder, MODEL, plan.batching, w),
                                plan, workdir, windows, reference, {"parallel_workers": workers}))
    if not PYTRITON_PYTHON.exists():
        results.append({"server": "pytriton", "error": "no .venv-pytriton: run scripts/setup.sh --dev"})
    else:
        results.append(run_peer("pytriton", lambda: pytriton(workdir, folder, MODEL, plan.batching), plan, workdir,
                                windows, reference))
    return results


def _row(result: dict, clients: int) -> dict | None:
    return next((r for r in result.get("rows", []) if r["clients"] == clients), None)


def _usable(results: list[dict], prefix: str) -> list[dict]:
    return [r for r in results if r["server"].startswith(prefix) and r.get("outputs_equal")]


def _why_not(results: list[dict], prefix: str) -> str:
    failed = [r for r in results if r["server"].startswith(prefix)]
    if not failed:
        return f"{prefix} was not run"
    reasons = [r.get("error") or f"outputs differ from Predict by {r['max_abs_diff']:.3g}" for r in failed]
    return "; ".join(f"{r['server']}: {why.strip().splitlines()[-1] if why.strip() else why}"
                     for r, why in zip(failed, reasons, strict=True))


def comparison(quakestack: list[dict], results: list[dict], concurrency: tuple[int, ...]) -> dict:
    """Per concurrency: the best quakestack configuration / the best MLServer configuration and / PyTriton
    (throughput and p99): each server as its users would configure it for this load."""
    python_peers, triton = _usable(results, "mlserver"), _usable(results, "pytriton")
    table = {}
    for clients in concurrency:
        ours = max((_row(r, clients) for r in quakestack), key=lambda r: r["windows_per_s"])
        best = max((_row(r, clients) for r in python_peers), key=lambda r: r["windows_per_s"], default=None)
        lowest_p99 = min((_row(r, clients) for r in python_peers), key=lambda r: r["p99_ms"], default=None)
        tri = _row(triton[0], clients) if triton else None
        table[str(clients)] = {
            "quakestack_processes": ours.get("processes"),
            "vs_best_python_peer": best and round(ours["windows_per_s"] / best["windows_per_s"], 3),
            "best_python_peer_workers": best and best.get("parallel_workers"),
            "p99_vs_best_python_peer": lowest_p99 and round(ours["p99_ms"] / lowest_p99["p99_ms"], 3),
            "vs_triton": tri and round(ours["windows_per_s"] / tri["windows_per_s"], 3),
            "p99_vs_triton": tri and round(ours["p99_ms"] / tri["p99_ms"], 3)}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (< 90 s in all)")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch intra-op threads of every server process (0: half the CPUs, quakestack's default)")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy (and perf, where present) record quakestack's server during its 32-client run")
    parser.add_argument("--only-quakestack", action="store_true", help="no peers (with --profile: the profile alone)")
    parser.add_argument("--connections", choices=("own", "shared"), default="own",
                        help="a connection per client (default), or one per client process (4 in all)")
    parser.add_argument("--mlserver-workers", default=None,
                        help="MLServer parallel_workers settings (comma-separated; empty: no MLServer)")
    parser.add_argument("--processes", default=None,
                        help="quakestack's inference_processes settings to measure (comma-separated; default 1,2,4, "
                             "--quick 1,4)")
    args = parser.parse_args()
    if not TRITON_PYTHON.exists():
        sys.exit("no .venv-triton with tritonclient (the one client program): run scripts/setup.sh --dev")
    threads = args.torch_threads or max(1, (os.cpu_count() or 2) // 2)
    plan = Plan(seconds=1.5 if args.quick else 15.0, warmup_s=0.5 if args.quick else 3.0, concurrency=(1, 8, 32),
                mlserver_workers=(0, 2) if args.quick else (0, 1, 2), batching=Batching(torch_threads=threads),
                connections=args.connections)
    if args.mlserver_workers is not None:
        plan = replace(plan, mlserver_workers=tuple(int(w) for w in args.mlserver_workers.split(",") if w))
    started, load = time.monotonic(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="quakestack-peers-") as tmp:
        workdir = Path(tmp)
        windows = workdir / "windows.npy"
        x = bench_windows(windows)
        ours = []
        settings = args.processes or ("1,4" if args.quick else "1,2,4")
        for processes in sorted({int(p) for p in settings.split(",")}):
            result, reference, folder = run_quakestack(plan, workdir, windows, x, processes, args.profile)
            ours.append(result)
        results = [] if args.only_quakestack else run_peers(plan, workdir, windows, reference, folder)
    table = comparison(ours, results, plan.concurrency)
    top = str(max(plan.concurrency))
    python_peer, triton = table[top]["vs_best_python_peer"], table[top]["vs_triton"]
    print(json.dumps({
        "bench": "serving_peers", "model": ARCH, "normalization": "std", "windows": N_WINDOWS,
        "seconds": plan.seconds, "warmup_s": plan.warmup_s, "connections": plan.connections,
        "max_batch_size": plan.batching.max_batch_size,
        "max_queue_delay_us": plan.batching.max_queue_delay_us, "torch_threads": threads, "cpus": os.cpu_count(),
        "load_average_at_start": round(load, 2), "wall_s": round(time.monotonic() - started, 1),
        "servers": [*ours, *results], "by_clients": table,
        "ratio_vs_best_python_peer": python_peer,
        "ratio_vs_best_python_peer_reason": None if python_peer else _why_not(results, "mlserver"),
        "ratio_vs_triton": triton,
        "ratio_vs_triton_reason": None if triton else _why_not(results, "pytriton"),
        "p99_ratio_vs_best_python_peer": table["8"]["p99_vs_best_python_peer"],
        "goal": {"ratio_vs_best_python_peer": 1.3, "ratio_vs_triton": 1.0, "p99_ratio_at_1_and_8": 1.0}}))


if __name__ == "__main__":
    main()
