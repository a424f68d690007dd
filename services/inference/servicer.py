"""InferenceService servicer."""

from __future__ import annotations

from quakestack.config import Settings
from quakestack.runtime.app import ServiceDefinition
from quakestack.runtime.server import GrpcServer
from quakestack.storage import ObjectStore
from quakestack.v1 import inference_pb2_grpc


def register(server: GrpcServer, settings: Settings, store: ObjectStore) -> None:
    server.add(inference_pb2_grpc.add_InferenceServiceServicer_to_server,
               inference_pb2_grpc.InferenceServiceServicer())


DEFINITION = ServiceDefinition(
    name="inference", grpc_port_setting="inference_grpc_port", metrics_port_setting="inference_metrics_port",
    health_names=("quakestack.v1.InferenceService",), register=register,
)
