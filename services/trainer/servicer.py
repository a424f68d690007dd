"""TrainerService and ModelRegistry servicers."""

from __future__ import annotations

from quakestack.config import Settings
from quakestack.runtime.app import ServiceDefinition
from quakestack.runtime.server import GrpcServer
from quakestack.storage import ObjectStore
from quakestack.v1 import trainer_pb2_grpc


def register(server: GrpcServer, settings: Settings, store: ObjectStore) -> None:
    server.add(trainer_pb2_grpc.add_TrainerServiceServicer_to_server, trainer_pb2_grpc.TrainerServiceServicer())
    server.add(trainer_pb2_grpc.add_ModelRegistryServicer_to_server, trainer_pb2_grpc.ModelRegistryServicer())


DEFINITION = ServiceDefinition(
    name="trainer", grpc_port_setting="trainer_grpc_port", metrics_port_setting="trainer_metrics_port",
    health_names=("quakestack.v1.TrainerService", "quakestack.v1.ModelRegistry"), register=register,
)
