"""python -m services.inference.worker RUN_DIR INDEX PORT: a data-plane process of the inference service.

Started by the service's first process when ``inference_processes`` > 1 (quakestack.inference.processes):
it binds the service's port beside the first, keeps a copy of the first's resident models, answers Predict
and ModelInfer with the same servicer, batcher, deadlines, interceptors (metrics, request ids, auth) and
request log as the first, and forwards every other call to the first.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
import structlog
import torch
from prometheus_client import REGISTRY, generate_latest

from quakestack.audit import AuditTrail
from quakestack.auth import Authorizer
from quakestack.config import load_settings
from quakestack.inference.feedback import InferenceLog
from quakestack.inference.manager import LoadOptions, ModelManager
from quakestack.inference.processes import (
    GENERATION_FILE,
    METRICS_METHOD,
    PRIMARY_SOCKET,
    SERVED_METHOD,
    Generation,
    local_channel,
    read_resident,
    worker_socket,
)
from quakestack.logging import configure
from quakestack.metadata.database import Database
from quakestack.model_store import ModelStore
from quakestack.oip import open_inference_pb2 as oip
from quakestack.runtime.forward import Forwarder, LocalOnly
from quakestack.runtime.memory import keep_freed_memory
from quakestack.runtime.server import bind_port, grpc_options, runtime_interceptors, wait_for_stop_signal
from quakestack.storage import ObjectStore
from quakestack.v1 import inference_pb2
from services.inference.oip_servicer import OpenInferenceServicer
from services.inference.servicer import InferenceServicer, torch_threads

log = structlog.get_logger()
PREDICT = "/quakestack.v1.InferenceService/Predict"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
SYNC_INTERVAL_S = 0.1


class Mirror(threading.Thread):
    """Keeps this process's resident models equal to the first process's (resident.json)."""

    def __init__(self, manager: ModelManager, run_dir: Path):
        super().__init__(name="mirror", daemon=True)
        self.manager = manager
        self.run_dir = run_dir
        self.generation = Generation(run_dir / GENERATION_FILE)
        self.synced = -1
        self._stop = threading.Event()

    def current(self) -> bool:
        """Whether this copy is the first process's present one (else calls are forwarded)."""
        return self.synced == self.generation.read()

    def sync(self) -> None:
        wanted = self.generation.read()
        models = {m["name"]: m for m in read_resident(self.run_dir)}
        held = {r.name: r for r in self.manager.list()}
        for name, m in models.items():
            options = LoadOptions(m["device"], m["max_batch_size"], m["max_queue_delay_us"], m["instances"],
                                  m["max_queue_size"])
            r = held.get(name)
            if r is None or r.version != m["version"] or r.options != options or r.device != m["device"]:
                self.manager.load(name, str(m["version"]), options)
        for name in held.keys() - models.keys():
            self.manager.unload(name)
        self.synced = wanted

    def run(self) -> None:
        while not self._stop.wait(SYNC_INTERVAL_S):
            if self.current():
                continue
            try:
                self.sync()
            except Exception as exc:  # noqa: BLE001 - storage away, a load failing here: forward meanwhile, retry
                log.warning("resident models not mirrored yet; forwarding", error=str(exc))
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()


class Router(grpc.GenericRpcHandler):
    """Predict and ModelInfer here while the copy is current; everything else to the first process."""

    def __init__(self, local: dict[str, grpc.RpcMethodHandler], forwarder: Forwarder, mirror: Mirror):
        self.local = local
        self.forwarder = forwarder
        self.mirror = mirror

    def service(self, handler_call_details):
        handler = self.local.get(handler_call_details.method)
        if handler is not None and self.mirror.current():
            return handler
        return self.forwarder.handler(handler_call_details.method)


class Private(grpc.GenericRpcHandler):
    """The first process asks each data-plane process for its counts over its own socket."""

    def __init__(self, manager: ModelManager):
        self.manager = manager

    def served(self, request: bytes, context) -> bytes:
        return json.dumps([{"name": r.name, "version": r.version, "batches": r.batcher.stats.batches,
                            "windows": r.batcher.stats.windows, "last_used": r.batcher.last_used}
                           for r in self.manager.list()]).encode()

    def metrics(self, request: bytes, context) -> bytes:
        return generate_latest(REGISTRY)

    def service(self, handler_call_details):
        behavior = {SERVED_METHOD: self.served, METRICS_METHOD: self.metrics}.get(handler_call_details.method)
        return None if behavior is None else grpc.unary_unary_rpc_method_handler(behavior)


def main() -> None:
    run_dir, index, port = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    if os.getppid() == 1:  # the first process died before the parent-death signal was armed
        sys.exit(1)
    settings = load_settings().replace(inference_grpc_port=port)
    configure("inference", settings.log_level, settings.log_format)
    structlog.contextvars.bind_contextvars(data_plane_process=index)
    torch.set_num_threads(torch_threads(settings))
    if settings.keep_freed_memory:
        keep_freed_memory()
    store = ObjectStore.from_settings(settings)
    database = Database.from_settings(settings)
    manager = ModelManager(ModelStore(store, database), memory_budget_bytes=1 << 62,  # the first keeps the budget
                           default_device=settings.device)
    inference_log = InferenceLog(store, settings.inference_log_sample_rate)
    servicer = InferenceServicer(settings, store, manager, inference_log)
    open_inference = OpenInferenceServicer(servicer, lambda: True)
    max_bytes = settings.max_message_mb * 1024 * 1024
    forwarder = Forwarder(local_channel(run_dir / PRIMARY_SOCKET, max_bytes))
    mirror = Mirror(manager, run_dir)
    local = {
        PREDICT: grpc.unary_unary_rpc_method_handler(
            servicer.Predict, request_deserializer=inference_pb2.PredictRequest.FromString,
            response_serializer=inference_pb2.PredictResponse.SerializeToString),
        MODEL_INFER: grpc.unary_unary_rpc_method_handler(
            open_inference.ModelInfer, request_deserializer=oip.ModelInferRequest.FromString,
            response_serializer=oip.ModelInferResponse.SerializeToString),
    }
    audit = AuditTrail("inference", store, settings.audit_flush_s)
    interceptors = runtime_interceptors(settings, Authorizer.from_settings(settings), audit)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="data-plane"),
                         handlers=[Router(local, forwarder, mirror)],
                         interceptors=[LocalOnly(interceptors, forwarder)], options=grpc_options(settings))
    try:
        bind_port(server, settings, port)
    except OSError as exc:
        log.error("cannot bind the service's port", error=str(exc))
        sys.exit(1)
    private = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[Private(manager)])
    private.add_secure_port(f"unix:{worker_socket(run_dir, index)}",
                            grpc.local_server_credentials(grpc.LocalConnectionType.UDS))
    mirror.start()
    server.start()
    private.start()  # after the public server: answering here means serving there (tests wait on it)
    log.info("data-plane process serving", port=port, index=index)
    wait_for_stop_signal()
    server.stop(settings.grace_s).wait()
    mirror.stop()
    private.stop(None)
    manager.close()
    inference_log.close()
    audit.close()
    database.close()
    log.info("data-plane process stopped", index=index)


if __name__ == "__main__":
    main()
