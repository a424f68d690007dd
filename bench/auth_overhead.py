"""What authentication costs per call: the same empty unary RPC through the service runtime with auth off
and with auth on (bearer token checked against 100 configured tokens, role table, audit-free read),
interleaved in one run. Limit: auth-on p50 at most 1.3x auth-off p50 (or +150 us). Prints one JSON object.

    python bench/auth_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import time

import grpc

from quakestack.client import channel
from quakestack.config import load_settings
from quakestack.embedded.seaweed import free_ports
from quakestack.logging import configure
from quakestack.runtime.server import GrpcServer
from quakestack.v1 import inference_pb2

SERVICE = "quakestack.v1.InferenceService"   # a real, classified service: ListLoadedModels is read-only
METHOD = "ListLoadedModels"
TOKENS = 100
LIMIT_RATIO, LIMIT_EXTRA_US = 1.3, 150.0


def _handlers() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(
        lambda request, context: inference_pb2.ListLoadedModelsResponse(),
        request_deserializer=inference_pb2.ListLoadedModelsRequest.FromString,
        response_serializer=inference_pb2.ListLoadedModelsResponse.SerializeToString)})


def _server(api_tokens: str) -> GrpcServer:
    grpc_port, metrics_port = free_ports(2)
    settings = load_settings({}).replace(api_tokens=api_tokens)
    server = GrpcServer("bench", settings, port=grpc_port, metrics_port=metrics_port, health_names=[SERVICE])
    server.add(lambda _servicer, srv: srv.add_generic_rpc_handlers((_handlers(),)), None)
    return server.start()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 60 s on 2 cores)")
    args = parser.parse_args()
    rounds, per_round = (10, 100) if args.quick else (20, 500)
    configure("bench", level="warning")
    tokens = [secrets.token_urlsafe(32) for _ in range(TOKENS)]
    servers = {"off": _server(""), "on": _server(",".join(f"t{i}={t}:ro" for i, t in enumerate(tokens)))}
    metadata = {"off": (), "on": (("authorization", f"Bearer {tokens[-1]}"),)}  # the last one: a full scan
    times: dict[str, list[float]] = {"off": [], "on": []}
    channels = {mode: channel(f"127.0.0.1:{s.port}") for mode, s in servers.items()}
    try:
        calls = {mode: ch.unary_unary(f"/{SERVICE}/{METHOD}",
                                      request_serializer=inference_pb2.ListLoadedModelsRequest.SerializeToString,
                                      response_deserializer=inference_pb2.ListLoadedModelsResponse.FromString)
                 for mode, ch in channels.items()}
        for mode in ("off", "on"):  # warm-up
            calls[mode](inference_pb2.ListLoadedModelsRequest(), metadata=metadata[mode], timeout=10)
        for _ in range(rounds):  # interleaved, so a busy machine slows both alike
            for mode in ("off", "on"):
                for _ in range(per_round):
                    start = time.perf_counter()
                    calls[mode](inference_pb2.ListLoadedModelsRequest(), metadata=metadata[mode], timeout=10)
                    times[mode].append(time.perf_counter() - start)
        try:
            calls["on"](inference_pb2.ListLoadedModelsRequest(), timeout=10)
            refused = False
        except grpc.RpcError as exc:
            refused = exc.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        for ch in channels.values():
            ch.close()
        for server in servers.values():
            server.stop(grace_s=1)
    off, on = (statistics.median(times[m]) * 1e6 for m in ("off", "on"))
    result = {
        "bench": "auth_overhead",
        "tokens": TOKENS,
        "auth_off_p50_us": round(off, 1),
        "auth_on_p50_us": round(on, 1),
        "ratio": round(on / off, 3),
        "extra_us": round(on - off, 1),
        "no_token_refused": refused,
        "within_limit": refused and (on <= off * LIMIT_RATIO or on - off <= LIMIT_EXTRA_US),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
