"""DataService servicer: protobuf in, library calls, protobuf out."""

from __future__ import annotations

import threading

from quakestack.config import Settings
from quakestack.dependants import dataset_dependants, refusal
from quakestack.errors import FailedPrecondition
from quakestack.pagination import page_request
from quakestack.runtime.app import ServiceDefinition
from quakestack.runtime.server import GrpcServer
from quakestack.storage import ObjectStore
from quakestack.v1 import data_pb2, data_pb2_grpc
from services.data import catalog, datasets
from services.data.jobs import JobManager
from services.data.uploads import store_upload

MAX_UPLOAD_BYTES = 64 * 1024**3


class DataServicer(data_pb2_grpc.DataServiceServicer):
    def __init__(self, settings: Settings, store: ObjectStore):
        self.settings = settings
        self.store = store
        self.jobs = JobManager(store, settings)

    def UploadFile(self, request_iterator, context):
        return store_upload(self.store, request_iterator, MAX_UPLOAD_BYTES)

    # -- jobs ---------------------------------------------------------------------------------
    def CreateDataset(self, request, context):
        return data_pb2.CreateDatasetResponse(job=self.jobs.create(request).to_proto())

    def GetDatasetJob(self, request, context):
        return data_pb2.GetDatasetJobResponse(job=self.jobs.get(request.job_id).to_proto())

    def ListDatasetJobs(self, request, context):
        jobs, token = self.jobs.list(page_request("ListDatasetJobs", request.page_size, request.page_token))
        return data_pb2.ListDatasetJobsResponse(jobs=[j.to_proto() for j in jobs], next_page_token=token)

    def WatchDatasetJob(self, request, context):
        for job in self.jobs.watch(request.job_id, context.is_active):
            yield data_pb2.WatchDatasetJobResponse(job=job)

    def CancelDatasetJob(self, request, context):
        return data_pb2.CancelDatasetJobResponse(job=self.jobs.cancel(request.job_id).to_proto())

    # -- datasets -----------------------------------------------------------------------------
    def GetDataset(self, request, context):
        return data_pb2.GetDatasetResponse(dataset=datasets.get(self.store, request.name))

    def ListDatasets(self, request, context):
        page = page_request("ListDatasets", request.page_size, request.page_token)
        found, token = datasets.list_datasets(self.store, page)
        return data_pb2.ListDatasetsResponse(datasets=found, next_page_token=token)

    def DescribeDataset(self, request, context):
        return datasets.describe(self.store, request.name)

    def SampleDataset(self, request, context):
        return datasets.sample(self.store, request.name, request.split, request.count, self.settings.cache_dir)

    def DeleteDataset(self, request, context):
        if any(j.dataset == request.name and not j.terminal for j in list(self.jobs.jobs.values())):
            raise FailedPrecondition(f"dataset {request.name!r} is being written by a running job")
        if not request.force:
            datasets.get(self.store, request.name)  # NOT_FOUND first: nothing to protect
            users = dataset_dependants(self.store, request.name)
            if users:
                raise FailedPrecondition(refusal(f"dataset {request.name!r}", users))
        return data_pb2.DeleteDatasetResponse(objects_deleted=datasets.delete(self.store, request.name))


def register(server: GrpcServer, settings: Settings, store: ObjectStore) -> None:
    servicer = DataServicer(settings, store)
    server.add(data_pb2_grpc.add_DataServiceServicer_to_server, servicer)
    server.on_shutdown(servicer.jobs.shutdown)
    catalog.register(server, settings, store)

    def on_dependencies(healthy: bool) -> None:
        if healthy:
            servicer.jobs.pool.get()  # warm renderers before SERVING: ready means ready at full speed
            # first time storage answers: rerun the jobs a dead process left unfinished
            threading.Thread(target=servicer.jobs.recover, name="dataset-recover", daemon=True).start()

    server.on_dependencies(on_dependencies)


DEFINITION = ServiceDefinition(
    name="data", grpc_port_setting="data_grpc_port", metrics_port_setting="data_metrics_port",
    health_names=("quakestack.v1.DataService", "quakestack.v1.CatalogService"), register=register,
)
