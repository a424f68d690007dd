"""CatalogService servicer: annotation jobs and their catalogs (protobuf in, one library call, protobuf out)."""

from __future__ import annotations

from typing import Any

from quakestack.catalog.jobs import AnnotationJobs, job_record
from quakestack.catalog.stored import catalog_file, evaluate_stored, read_location
from quakestack.config import Settings
from quakestack.errors import InvalidArgument
from quakestack.jobs.listing import list_jobs
from quakestack.layout import catalog_artifact_key
from quakestack.metadata.database import Database
from quakestack.protoconv import dict_from_struct, seconds_from_timestamp, timestamp_from_iso
from quakestack.storage import ObjectStore
from quakestack.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2

CHUNK = 1 << 20
FORMATS = {catalog_pb2.CATALOG_FILE_FORMAT_UNSPECIFIED: "quakeml", catalog_pb2.CATALOG_FILE_FORMAT_QUAKEML: "quakeml",
           catalog_pb2.CATALOG_FILE_FORMAT_EVENTS_CSV: "csv", catalog_pb2.CATALOG_FILE_FORMAT_PICKS_CSV: "picks-csv",
           catalog_pb2.CATALOG_FILE_FORMAT_ALL_PICKS_CSV: "all-picks-csv"}


def annotation_job(record: dict[str, Any]) -> catalog_pb2.AnnotationJob:
    p = record["progress"]
    return catalog_pb2.AnnotationJob(
        job_id=record["job_id"], state=common_pb2.JobState.Value(f"JOB_STATE_{record['state']}"),
        progress=catalog_pb2.AnnotationProgress(
            station_days_total=int(p.get("station_days_total", 0)),
            station_days_done=int(p.get("station_days_done", 0)),
            picks=int(p.get("picks", 0)), data_hours_per_s=float(p.get("data_hours_per_s", 0.0)),
            eta_s=float(p.get("eta_s", 0.0)), stage=str(p.get("stage", ""))),
        missing_station_days=record["missing_station_days"], events=int(p.get("events", 0)),
        associated_picks=int(p.get("associated_picks", 0)), picker=record["picker"],
        magnitude_model=record["magnitude_model"], classifier=record["classifier"], error=record["error"],
        display_name=record["display_name"], create_time=timestamp_from_iso(record["create_time"]),
        update_time=timestamp_from_iso(record.get("update_time")), catalog_keys=list(p.get("catalog_keys", [])))


def _location(message: common_pb2.Location) -> dict[str, str]:
    which = message.WhichOneof("location")
    return {which: getattr(message, which)} if which else {}


def _archive(message: catalog_pb2.ArchiveSource) -> dict[str, Any]:
    which = message.WhichOneof("source")
    if which == "miniseed_objects":
        return {"object_keys": list(message.miniseed_objects.object_keys)}
    return {which: getattr(message, which)} if which else {}


def create_arguments(request: catalog_pb2.CreateAnnotationJobRequest) -> dict[str, Any]:
    """The request as the keyword arguments of AnnotationJobs.create."""
    s = request.selection
    return dict(
        archive=_archive(request.archive), inventory=_location(request.inventory),
        selection={"network": s.network, "station": s.station, "location": s.location, "channel": s.channel},
        start=seconds_from_timestamp(request.start_time) if request.HasField("start_time") else 0.0,
        end=seconds_from_timestamp(request.end_time) if request.HasField("end_time") else 0.0,
        picker=(request.picker.name, request.picker.version),
        magnitude_model=(request.magnitude_model.name, request.magnitude_model.version),
        classifier=(request.classifier.name, request.classifier.version),
        parameters=dict_from_struct(request.association_parameters), margin_s=request.margin_s,
        pick_threshold=request.pick_threshold, workers=request.workers, device=request.device,
        remove_response=request.remove_response, display_name=request.display_name,
        input_policy={"max_upsampling": request.input_policy.max_upsampling,
                      "missing_components": request.input_policy.missing_components})


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, settings: Settings, store: ObjectStore, jobs: AnnotationJobs):
        self.settings = settings
        self.store = store
        self.jobs = jobs

    def _job(self, view) -> catalog_pb2.AnnotationJob:
        return annotation_job(job_record(view))

    def CreateAnnotationJob(self, request, context):
        return catalog_pb2.CreateAnnotationJobResponse(job=self._job(self.jobs.create(**create_arguments(request))))

    def GetAnnotationJob(self, request, context):
        return catalog_pb2.GetAnnotationJobResponse(job=self._job(self.jobs.get(request.job_id)))

    def ListAnnotationJobs(self, request, context):
        jobs, token = list_jobs(self.jobs.scheduler, "ListAnnotationJobs", request)
        return catalog_pb2.ListAnnotationJobsResponse(jobs=[self._job(j) for j in jobs], next_page_token=token)

    def WatchAnnotationJob(self, request, context):
        for view in self.jobs.watch(request.job_id, context.is_active):
            yield catalog_pb2.WatchAnnotationJobResponse(job=self._job(view))

    def CancelAnnotationJob(self, request, context):
        return catalog_pb2.CancelAnnotationJobResponse(job=self._job(self.jobs.cancel(request.job_id)))

    def GetCatalog(self, request, context):
        if request.format not in FORMATS:
            raise InvalidArgument(f"format {request.format} is not a CatalogFileFormat")
        self.jobs.succeeded(request.job_id)
        for chunk in self.store.iter_chunks(catalog_file(request.job_id, FORMATS[request.format]), CHUNK):
            yield catalog_pb2.GetCatalogResponse(chunk=chunk)

    def EvaluateCatalog(self, request, context):
        view = self.jobs.succeeded(request.job_id)
        data, name = read_location(self.store, self.settings, _location(request.reference), "reference")
        r = evaluate_stored(self.store, request.job_id, view.record.spec, data, name,
                            time_tolerance_s=request.time_tolerance_s,
                            distance_tolerance_km=request.distance_tolerance_km)
        return catalog_pb2.EvaluateCatalogResponse(
            evaluation_id=r["evaluation_id"], predicted_events=r["predicted"], reference_events=r["reference"],
            matched=r["matched"], precision=r["precision"], recall=r["recall"],
            median_origin_time_error_s=r["origin_time_error_median_s"],
            median_epicentral_error_km=r["epicentral_error_median_km"], magnitude_bias=r["magnitude_bias"],
            magnitude_rmse=r["magnitude_rmse"], artifact_keys=r["artifact_keys"])

    def DownloadCatalogArtifact(self, request, context):
        self.jobs.get(request.job_id)
        for chunk in self.store.iter_chunks(catalog_artifact_key(request.job_id, request.path), CHUNK):
            yield catalog_pb2.DownloadCatalogArtifactResponse(chunk=chunk)


def register(server, settings: Settings, store: ObjectStore, db: Database) -> None:
    """The CatalogService beside DataService, with its own scheduler of kind "annotation"."""
    jobs = AnnotationJobs(store, db, settings)
    server.add(catalog_pb2_grpc.add_CatalogServiceServicer_to_server, CatalogServicer(settings, store, jobs))
    server.on_shutdown(jobs.shutdown)
    jobs.start()
