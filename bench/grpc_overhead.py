"""Round trip through the service runtime versus the same servicer function called in-process.

Two calls: an empty unary call (pure per-call overhead: HTTP/2, interceptor, metrics, logging)
and a 256-window payload (256 x 3 x 6000 float32 = 18.4 MB, the shape of a full inference batch)
sent as raw bytes. The servicer decodes the windows and answers one prediction per window, as the
inference service will. Prints one JSON object as its last line.

    python bench/grpc_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import grpc
import numpy as np

from quakestack.client import channel
from quakestack.config import load_settings
from quakestack.embedded.seaweed import free_ports
from quakestack.logging import configure
from quakestack.runtime.server import GrpcServer
from quakestack.v1 import common_pb2, inference_pb2

SERVICE = "quakestack.bench.Overhead"
WINDOWS, COMPONENTS, SAMPLES = 256, 3, 6000


def empty(request: inference_pb2.ListLoadedModelsRequest, context) -> inference_pb2.ListLoadedModelsResponse:
    return inference_pb2.ListLoadedModelsResponse()


def summarize(request: inference_pb2.PredictRequest, context) -> inference_pb2.PredictResponse:
    """Decode the raw windows (zero-copy) and answer one value per window."""
    windows = np.frombuffer(request.windows.data, dtype="<f4").reshape(tuple(request.windows.shape))
    peaks = np.abs(windows).max(axis=(1, 2))
    return inference_pb2.PredictResponse(
        model=request.model, predictions=[inference_pb2.WindowPrediction(magnitude=float(p)) for p in peaks])


def _handlers() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Empty": grpc.unary_unary_rpc_method_handler(
            empty, request_deserializer=inference_pb2.ListLoadedModelsRequest.FromString,
            response_serializer=inference_pb2.ListLoadedModelsResponse.SerializeToString),
        "Summarize": grpc.unary_unary_rpc_method_handler(
            summarize, request_deserializer=inference_pb2.PredictRequest.FromString,
            response_serializer=inference_pb2.PredictResponse.SerializeToString),
    })


def _timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 60 s on 2 cores)")
    args = parser.parse_args()
    empty_repeats, payload_repeats = (300, 10) if args.quick else (3000, 50)

    configure("bench", level="warning")
    grpc_port, metrics_port = free_ports(2)
    settings = load_settings({}).replace(max_message_mb=64)
    server = GrpcServer("bench", settings, port=grpc_port, metrics_port=metrics_port, health_names=[SERVICE])
    server.add(lambda _servicer, srv: srv.add_generic_rpc_handlers((_handlers(),)), None)
    server.start()

    rng = np.random.default_rng(0)
    windows = rng.standard_normal((WINDOWS, COMPONENTS, SAMPLES), dtype=np.float32)
    request = inference_pb2.PredictRequest(model="bench", windows=common_pb2.Waveforms(
        data=windows.astype("<f4").tobytes(), shape=windows.shape, sampling_rate_hz=100.0, component_order="ZNE"))
    payload_mb = len(request.windows.data) / 1e6
    try:
        with channel(f"127.0.0.1:{grpc_port}") as ch:
            call_empty = ch.unary_unary(f"/{SERVICE}/Empty",
                                        request_serializer=inference_pb2.ListLoadedModelsRequest.SerializeToString,
                                        response_deserializer=inference_pb2.ListLoadedModelsResponse.FromString)
            call_payload = ch.unary_unary(f"/{SERVICE}/Summarize",
                                          request_serializer=inference_pb2.PredictRequest.SerializeToString,
                                          response_deserializer=inference_pb2.PredictResponse.FromString)
            grpc_empty = _timed(lambda: call_empty(inference_pb2.ListLoadedModelsRequest(), timeout=10),
                                empty_repeats)
            grpc_payload = _timed(lambda: call_payload(request, timeout=60), payload_repeats)
            answer = call_payload(request, timeout=60)
            assert len(answer.predictions) == WINDOWS
    finally:
        server.stop(grace_s=1)
    local_empty = _timed(lambda: empty(inference_pb2.ListLoadedModelsRequest(), None), empty_repeats)
    local_payload = _timed(lambda: summarize(request, None), payload_repeats)

    p50 = statistics.median
    result = {
        "bench": "grpc_overhead",
        "empty_unary_p50_us": round(p50(grpc_empty) * 1e6, 1),
        "empty_unary_inprocess_p50_us": round(p50(local_empty) * 1e6, 2),
        "payload_mb": round(payload_mb, 2),
        "payload_p50_ms": round(p50(grpc_payload) * 1e3, 2),
        "payload_inprocess_p50_ms": round(p50(local_payload) * 1e3, 2),
        "payload_mb_per_s": round(payload_mb / p50(grpc_payload), 1),
        "ratio": round(p50(local_payload) / p50(grpc_payload), 3),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
