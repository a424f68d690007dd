"""DataService servicer: protobuf in, library calls, protobuf out."""

from __future__ import annotations

from quakestack import metrics
from quakestack.config import Settings
from quakestack.data.jobs import DatasetJobs, summary
from quakestack.dependants import dataset_dependants, refusal
from quakestack.errors import FailedPrecondition
from quakestack.jobs.listing import list_jobs
from quakestack.metadata.database import Database
from quakestack.metadata.registry import Registry
from quakestack.metadata.usage import UsageLedger
from quakestack.pagination import page_request
from quakestack.runtime.app import ServiceDefinition
from quakestack.runtime.server import GrpcServer
from quakestack.storage import ObjectStore
from quakestack.v1 import data_pb2, data_pb2_grpc
from services.data import catalog, datasets
from services.data.convert import dataset_job
from services.data.requests import dataset_job_spec
from services.data.uploads import store_upload

MAX_UPLOAD_BYTES = 64 * 1024**3


class DataServicer(data_pb2_grpc.DataServiceServicer):
    def __init__(self, settings: Settings, store: ObjectStore, db: Database, jobs: DatasetJobs):
        self.settings = settings
        self.store = store
        self.jobs = jobs
        self.catalog = jobs.catalog
        self.registry = Registry(db)
        self.usage = UsageLedger(db)

    def UploadFile(self, request_iterator, context):
        return store_upload(self.store, self.usage, request_iterator, MAX_UPLOAD_BYTES)

    # -- jobs ---------------------------------------------------------------------------------
    def CreateDataset(self, request, context):
        view = self.jobs.create(dataset_job_spec(request, self.store, self.settings))
        return data_pb2.CreateDatasetResponse(job=dataset_job(summary(view)))

    def GetDatasetJob(self, request, context):
        return data_pb2.GetDatasetJobResponse(job=dataset_job(summary(self.jobs.get(request.job_id))))

    def ListDatasetJobs(self, request, context):
        jobs, token = list_jobs(self.jobs.scheduler, "ListDatasetJobs", request)
        return data_pb2.ListDatasetJobsResponse(jobs=[dataset_job(summary(v)) for v in jobs], next_page_token=token)

    def WatchDatasetJob(self, request, context):
        for job in self.jobs.watch(request.job_id, context.is_active):
            yield data_pb2.WatchDatasetJobResponse(job=dataset_job(job))

    def CancelDatasetJob(self, request, context):
        return data_pb2.CancelDatasetJobResponse(job=dataset_job(summary(self.jobs.cancel(request.job_id))))

    # -- datasets -----------------------------------------------------------------------------
    def GetDataset(self, request, context):
        return data_pb2.GetDatasetResponse(dataset=datasets.get(self.store, self.catalog, request.name))

    def ListDatasets(self, request, context):
        page = page_request("ListDatasets", request.page_size, request.page_token)
        found, token = datasets.list_datasets(self.store, self.catalog, page)
        return data_pb2.ListDatasetsResponse(datasets=found, next_page_token=token)

    def DescribeDataset(self, request, context):
        return datasets.describe(self.store, self.catalog, request.name)

    def SampleDataset(self, request, context):
        return datasets.sample(self.store, self.catalog, request.name, request.split, request.count,
                               self.settings.cache_dir)

    def DeleteDataset(self, request, context):
        writer = self.jobs.writer_of(request.name)
        if writer is not None:
            raise FailedPrecondition(f"dataset {request.name!r} is being written by job {writer}")
        if not request.force:
            self.catalog.get(request.name)  # NOT_FOUND first: nothing to protect
            users = dataset_dependants(self.jobs.scheduler.jobs, self.registry, request.name)
            if users:
                raise FailedPrecondition(refusal(f"dataset {request.name!r}", users))
        return data_pb2.DeleteDatasetResponse(objects_deleted=datasets.delete(self.store, self.catalog,
                                                                              request.name))


def register(server: GrpcServer, settings: Settings, store: ObjectStore, db: Database) -> None:
    jobs = DatasetJobs(store, db, settings)
    metrics.register_job_counts(jobs.scheduler.jobs.counts, ("dataset", "annotation"))
    server.add(data_pb2_grpc.add_DataServiceServicer_to_server, DataServicer(settings, store, db, jobs))
    server.on_shutdown(jobs.shutdown)
    jobs.start()
    catalog.register(server, settings, store, db)


DEFINITION = ServiceDefinition(
    name="data", grpc_port_setting="data_grpc_port", metrics_port_setting="data_metrics_port",
    health_names=("quakestack.v1.DataService", "quakestack.v1.CatalogService"), register=register,
)
