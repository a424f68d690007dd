"""DataService servicer: protobuf in, library calls, protobuf out."""

from __future__ import annotations

from quakestack.config import Settings
from quakestack.runtime.app import ServiceDefinition
from quakestack.runtime.server import GrpcServer
from quakestack.storage import ObjectStore
from quakestack.v1 import data_pb2_grpc
from services.data.uploads import store_upload

MAX_UPLOAD_BYTES = 64 * 1024**3


class DataServicer(data_pb2_grpc.DataServiceServicer):
    def __init__(self, settings: Settings, store: ObjectStore):
        self.settings = settings
        self.store = store

    def UploadFile(self, request_iterator, context):
        return store_upload(self.store, request_iterator, MAX_UPLOAD_BYTES)


def register(server: GrpcServer, settings: Settings, store: ObjectStore) -> None:
    server.add(data_pb2_grpc.add_DataServiceServicer_to_server, DataServicer(settings, store))


DEFINITION = ServiceDefinition(
    name="data", grpc_port_setting="data_grpc_port", metrics_port_setting="data_metrics_port",
    health_names=("quakestack.v1.DataService",), register=register,
)
