"""The real InferenceServicer, ModelManager and batcher behind a bare gRPC server, for bench/server_kinds.py.

    python bench/support/bare_server.py {sync|interceptors|aio} PORT MODEL

``sync``: ``grpc.server`` with no interceptors. ``interceptors``: the same plus the runtime's
observability and access interceptors. ``aio``: ``grpc.aio.server`` with an async Predict that awaits the
batcher's future on the event loop. Storage settings come from the environment (QUAKESTACK_*). Prints
``ready`` once serving; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import sys
from concurrent import futures
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import grpc  # noqa: E402
import torch  # noqa: E402
from grpc_health.v1 import health, health_pb2_grpc  # noqa: E402

from quakestack.audit import AuditTrail  # noqa: E402
from quakestack.auth import Authorizer  # noqa: E402
from quakestack.config import load_settings  # noqa: E402
from quakestack.inference.feedback import InferenceLog  # noqa: E402
from quakestack.inference.manager import LoadOptions, ModelManager  # noqa: E402
from quakestack.logging import configure  # noqa: E402
from quakestack.metadata.database import Database  # noqa: E402
from quakestack.model_store import ModelStore  # noqa: E402
from quakestack.runtime.memory import keep_freed_memory  # noqa: E402
from quakestack.runtime.server import grpc_options, runtime_interceptors  # noqa: E402
from quakestack.storage import ObjectStore  # noqa: E402
from quakestack.v1 import inference_pb2_grpc  # noqa: E402
from services.inference.servicer import InferenceServicer, predict_response  # noqa: E402

MAX_BATCH, DELAY_US, POOL_THREADS = 32, 2000, 64


class AsyncPredict(inference_pb2_grpc.InferenceServiceServicer):
    """Predict as a coroutine around the service's own servicer: validation on the loop, the model on the
    batcher's thread."""

    def __init__(self, servicer: InferenceServicer):
        self.servicer = servicer

    async def Predict(self, request, context):
        x, extras = self.servicer.predict_inputs(request)
        resident, future = self.servicer.manager.submit(request.model, x, extras, None)
        out = await asyncio.wrap_future(future)
        return predict_response(request.model, resident, out, x.shape[0])


def main() -> None:
    kind, port, model = sys.argv[1], sys.argv[2], sys.argv[3]
    settings = load_settings()
    configure("inference", settings.log_level, settings.log_format)
    torch.set_num_threads(1)
    keep_freed_memory()
    store = ObjectStore.from_settings(settings)
    manager = ModelManager(ModelStore(store, Database.from_settings(settings)), memory_budget_bytes=1 << 32,
                           default_device="cpu")
    manager.load(model, "", LoadOptions("cpu", MAX_BATCH, DELAY_US, 1, 1024))
    servicer = InferenceServicer(settings, store, manager, InferenceLog(store, 0.0))
    address = f"127.0.0.1:{port}"
    if kind == "aio":
        asyncio.run(serve_aio(AsyncPredict(servicer), address))
        return
    interceptors = []
    if kind == "interceptors":
        interceptors = runtime_interceptors(settings, Authorizer.from_settings(settings),
                                            AuditTrail("inference", store, settings.audit_flush_s))
    server = grpc.server(futures.ThreadPoolExecutor(POOL_THREADS), interceptors=interceptors,
                         options=grpc_options(settings))
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    server.add_insecure_port(address)
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


async def serve_aio(servicer: AsyncPredict, address: str) -> None:
    server = grpc.aio.server()
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_insecure_port(address)
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    main()
