"""REST/JSON through the gateway versus direct gRPC, same RPC, same payload, same stack, same run.

Starts a fresh local stack (embedded S3, the services, the gateway) on free ports, then measures
sequential latency (p50/p99 over N calls) and concurrent throughput (C clients for T seconds) of
one RPC both ways: Predict of one 3 x 1000 window (ConvNetQuake-INGV registered in the registry and
loaded in the inference service; the REST body carries the samples base64-encoded, as protobuf's
JSON mapping of bytes says). Prints one JSON object as its last line.

    python bench/gateway.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import grpc
import numpy as np
from google.protobuf import json_format

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quakestack.client import channel, transport_options  # noqa: E402
from quakestack.config import load_settings  # noqa: E402
from quakestack.model_store import ModelStore, model_card  # noqa: E402
from quakestack.models.checkpoint import state_to_bytes  # noqa: E402
from quakestack.models.zoo import build_model  # noqa: E402
from quakestack.stack import Stack, with_free_ports  # noqa: E402
from quakestack.v1 import common_pb2, inference_pb2, inference_pb2_grpc  # noqa: E402

MODEL, ARCH, HPARAMS = "bench-gateway", "convnetquake_ingv", {"n_samples": 1000}
RPC = "Predict"
REST_METHOD, REST_PATH = "POST", f"/v1/loaded-models/{MODEL}:predict"
WINDOW = np.random.default_rng(0).standard_normal((1, 3, 1000)).astype("<f4")
REQUEST = inference_pb2.PredictRequest(model=MODEL, windows=common_pb2.Waveforms(
    data=WINDOW.tobytes(), shape=WINDOW.shape, sampling_rate_hz=100.0, component_order="ZNE"))
REST_BODY = json_format.MessageToJson(REQUEST)
CONCURRENCY = 8


def load_model(settings) -> None:
    """Register random weights of a small model and load it, as a trained one would be."""
    model, _, _ = build_model(ARCH, HPARAMS)
    card = model_card(ARCH, HPARAMS, dataset="bench", source={"job_id": "bench", "epoch": 1})
    ModelStore.from_settings(settings).register(MODEL, state_to_bytes(model.state_dict()), card)
    with channel(settings.inference_addr) as ch:
        inference_pb2_grpc.InferenceServiceStub(ch).LoadModel(inference_pb2.LoadModelRequest(name=MODEL), timeout=60)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def latencies(call: Callable[[], Awaitable[None]], n: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        await call()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        out.append(time.perf_counter() - start)
    return out


async def throughput(call: Callable[[], Awaitable[None]], seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return done / (time.perf_counter() - start)


async def measure(gateway: str, target: str, n: int, seconds: float) -> dict:
    statuses: dict[str, set] = {"rest": set(), "grpc": set()}
    async with aiohttp.ClientSession(base_url=gateway, connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as http, \
            grpc.aio.insecure_channel(target, options=transport_options(64 << 20)) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)

        async def rest() -> None:
            async with http.request(REST_METHOD, REST_PATH, data=REST_BODY,
                                    headers={"Content-Type": "application/json"}) as response:
                await response.read()
                statuses["rest"].add(response.status)

        async def direct() -> None:
            try:
                await getattr(stub, RPC)(REQUEST, timeout=30)
                statuses["grpc"].add("OK")
            except grpc.aio.AioRpcError as exc:
                statuses["grpc"].add(exc.code().name)

        rest_lat = await latencies(rest, n, warmup=max(10, n // 10))
        grpc_lat = await latencies(direct, n, warmup=max(10, n // 10))
        rest_tp = await throughput(rest, seconds)
        grpc_tp = await throughput(direct, seconds)
    def ms(value: float) -> float:
        return round(value * 1e3, 3)

    return {
        "rest_p50_ms": ms(statistics.median(rest_lat)), "rest_p99_ms": ms(percentile(rest_lat, 0.99)),
        "grpc_p50_ms": ms(statistics.median(grpc_lat)), "grpc_p99_ms": ms(percentile(grpc_lat, 0.99)),
        "rest_rps": round(rest_tp, 1), "grpc_rps": round(grpc_tp, 1),
        "p50_ratio": round(statistics.median(rest_lat) / statistics.median(grpc_lat), 3),
        "p99_ratio": round(percentile(rest_lat, 0.99) / percentile(grpc_lat, 0.99), 3),
        "throughput_ratio": round(rest_tp / grpc_tp, 3),
        "rest_statuses": sorted(statuses["rest"]), "grpc_statuses": sorted(statuses["grpc"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, shorter throughput runs (< 60 s)")
    args = parser.parse_args()
    n, seconds = (300, 3.0) if args.quick else (3000, 15.0)
    with tempfile.TemporaryDirectory(prefix="quakestack-bench-") as tmp:
        settings = with_free_ports(load_settings({})).replace(storage_dir=str(Path(tmp) / "s3"),
                                                              cache_dir=str(Path(tmp) / "cache"))
        stack = Stack(settings, state_dir=tmp)
        started = time.perf_counter()
        endpoints = stack.start()
        try:
            print(f"stack up in {time.perf_counter() - started:.1f}s; {n} sequential calls each, "
                  f"{CONCURRENCY} clients x {seconds:.0f}s", file=sys.stderr)
            load_model(stack.settings)
            result = asyncio.run(measure(endpoints.gateway, endpoints.grpc["inference"], n, seconds))
        finally:
            stack.stop()
    print(json.dumps({"bench": "gateway", "rpc": RPC, "rest": f"{REST_METHOD} {REST_PATH}", "calls": n,
                      "concurrency": CONCURRENCY, "seconds": seconds, "quick": args.quick, **result}))


if __name__ == "__main__":
    main()
