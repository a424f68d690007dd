import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from quakestack.v1 import common_pb2 as _common_pb2
from quakestack.v1 import inference_pb2 as _inference_pb2
from quakestack.v1 import trainer_pb2 as _trainer_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CatalogFileFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CATALOG_FILE_FORMAT_UNSPECIFIED: _ClassVar[CatalogFileFormat]
    CATALOG_FILE_FORMAT_QUAKEML: _ClassVar[CatalogFileFormat]
    CATALOG_FILE_FORMAT_EVENTS_CSV: _ClassVar[CatalogFileFormat]
    CATALOG_FILE_FORMAT_PICKS_CSV: _ClassVar[CatalogFileFormat]
    CATALOG_FILE_FORMAT_ALL_PICKS_CSV: _ClassVar[CatalogFileFormat]
CATALOG_FILE_FORMAT_UNSPECIFIED: CatalogFileFormat
CATALOG_FILE_FORMAT_QUAKEML: CatalogFileFormat
CATALOG_FILE_FORMAT_EVENTS_CSV: CatalogFileFormat
CATALOG_FILE_FORMAT_PICKS_CSV: CatalogFileFormat
CATALOG_FILE_FORMAT_ALL_PICKS_CSV: CatalogFileFormat

class ArchiveSource(_message.Message):
    __slots__ = ("sds_prefix", "sds_local_path", "miniseed_objects")
    SDS_PREFIX_FIELD_NUMBER: _ClassVar[int]
    SDS_LOCAL_PATH_FIELD_NUMBER: _ClassVar[int]
    MINISEED_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    sds_prefix: str
    sds_local_path: str
    miniseed_objects: MiniseedObjects
    def __init__(self, sds_prefix: _Optional[str] = ..., sds_local_path: _Optional[str] = ..., miniseed_objects: _Optional[_Union[MiniseedObjects, _Mapping]] = ...) -> None: ...

class MiniseedObjects(_message.Message):
    __slots__ = ("object_keys",)
    OBJECT_KEYS_FIELD_NUMBER: _ClassVar[int]
    object_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, object_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class StreamSelection(_message.Message):
    __slots__ = ("network", "station", "location", "channel")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    STATION_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    network: str
    station: str
    location: str
    channel: str
    def __init__(self, network: _Optional[str] = ..., station: _Optional[str] = ..., location: _Optional[str] = ..., channel: _Optional[str] = ...) -> None: ...

class CreateAnnotationJobRequest(_message.Message):
    __slots__ = ("archive", "inventory", "selection", "start_time", "end_time", "picker", "magnitude_model", "classifier", "association_parameters", "margin_s", "pick_threshold", "workers", "device", "remove_response", "display_name", "input_policy")
    ARCHIVE_FIELD_NUMBER: _ClassVar[int]
    INVENTORY_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PICKER_FIELD_NUMBER: _ClassVar[int]
    MAGNITUDE_MODEL_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATION_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    MARGIN_S_FIELD_NUMBER: _ClassVar[int]
    PICK_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    REMOVE_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_POLICY_FIELD_NUMBER: _ClassVar[int]
    archive: ArchiveSource
    inventory: _common_pb2.Location
    selection: StreamSelection
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    picker: _trainer_pb2.ModelRef
    magnitude_model: _trainer_pb2.ModelRef
    classifier: _trainer_pb2.ModelRef
    association_parameters: _struct_pb2.Struct
    margin_s: float
    pick_threshold: float
    workers: int
    device: str
    remove_response: bool
    display_name: str
    input_policy: _inference_pb2.InputPolicy
    def __init__(self, archive: _Optional[_Union[ArchiveSource, _Mapping]] = ..., inventory: _Optional[_Union[_common_pb2.Location, _Mapping]] = ..., selection: _Optional[_Union[StreamSelection, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., picker: _Optional[_Union[_trainer_pb2.ModelRef, _Mapping]] = ..., magnitude_model: _Optional[_Union[_trainer_pb2.ModelRef, _Mapping]] = ..., classifier: _Optional[_Union[_trainer_pb2.ModelRef, _Mapping]] = ..., association_parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., margin_s: _Optional[float] = ..., pick_threshold: _Optional[float] = ..., workers: _Optional[int] = ..., device: _Optional[str] = ..., remove_response: _Optional[bool] = ..., display_name: _Optional[str] = ..., input_policy: _Optional[_Union[_inference_pb2.InputPolicy, _Mapping]] = ...) -> None: ...

class CreateAnnotationJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: AnnotationJob
    def __init__(self, job: _Optional[_Union[AnnotationJob, _Mapping]] = ...) -> None: ...

class AnnotationProgress(_message.Message):
    __slots__ = ("station_days_total", "station_days_done", "picks", "data_hours_per_s", "eta_s", "stage")
    STATION_DAYS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    STATION_DAYS_DONE_FIELD_NUMBER: _ClassVar[int]
    PICKS_FIELD_NUMBER: _ClassVar[int]
    DATA_HOURS_PER_S_FIELD_NUMBER: _ClassVar[int]
    ETA_S_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    station_days_total: int
    station_days_done: int
    picks: int
    data_hours_per_s: float
    eta_s: float
    stage: str
    def __init__(self, station_days_total: _Optional[int] = ..., station_days_done: _Optional[int] = ..., picks: _Optional[int] = ..., data_hours_per_s: _Optional[float] = ..., eta_s: _Optional[float] = ..., stage: _Optional[str] = ...) -> None: ...

class AnnotationJob(_message.Message):
    __slots__ = ("job_id", "state", "progress", "missing_station_days", "events", "associated_picks", "picker", "magnitude_model", "classifier", "error", "display_name", "create_time", "update_time", "catalog_keys")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MISSING_STATION_DAYS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATED_PICKS_FIELD_NUMBER: _ClassVar[int]
    PICKER_FIELD_NUMBER: _ClassVar[int]
    MAGNITUDE_MODEL_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CATALOG_KEYS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: _common_pb2.JobState
    progress: AnnotationProgress
    missing_station_days: _containers.RepeatedScalarFieldContainer[str]
    events: int
    associated_picks: int
    picker: str
    magnitude_model: str
    classifier: str
    error: str
    display_name: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    catalog_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., progress: _Optional[_Union[AnnotationProgress, _Mapping]] = ..., missing_station_days: _Optional[_Iterable[str]] = ..., events: _Optional[int] = ..., associated_picks: _Optional[int] = ..., picker: _Optional[str] = ..., magnitude_model: _Optional[str] = ..., classifier: _Optional[str] = ..., error: _Optional[str] = ..., display_name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., catalog_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class GetAnnotationJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetAnnotationJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: AnnotationJob
    def __init__(self, job: _Optional[_Union[AnnotationJob, _Mapping]] = ...) -> None: ...

class ListAnnotationJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state", "owner", "created_after", "created_before")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: _common_pb2.JobState
    owner: str
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., owner: _Optional[str] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAnnotationJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[AnnotationJob]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[AnnotationJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchAnnotationJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchAnnotationJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: AnnotationJob
    def __init__(self, job: _Optional[_Union[AnnotationJob, _Mapping]] = ...) -> None: ...

class CancelAnnotationJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelAnnotationJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: AnnotationJob
    def __init__(self, job: _Optional[_Union[AnnotationJob, _Mapping]] = ...) -> None: ...

class GetCatalogRequest(_message.Message):
    __slots__ = ("job_id", "format")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    format: CatalogFileFormat
    def __init__(self, job_id: _Optional[str] = ..., format: _Optional[_Union[CatalogFileFormat, str]] = ...) -> None: ...

class GetCatalogResponse(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    def __init__(self, chunk: _Optional[bytes] = ...) -> None: ...

class EvaluateCatalogRequest(_message.Message):
    __slots__ = ("job_id", "reference", "time_tolerance_s", "distance_tolerance_km")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_TOLERANCE_S_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_TOLERANCE_KM_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reference: _common_pb2.Location
    time_tolerance_s: float
    distance_tolerance_km: float
    def __init__(self, job_id: _Optional[str] = ..., reference: _Optional[_Union[_common_pb2.Location, _Mapping]] = ..., time_tolerance_s: _Optional[float] = ..., distance_tolerance_km: _Optional[float] = ...) -> None: ...

class EvaluateCatalogResponse(_message.Message):
    __slots__ = ("evaluation_id", "predicted_events", "reference_events", "matched", "precision", "recall", "median_origin_time_error_s", "median_epicentral_error_km", "magnitude_bias", "magnitude_rmse", "artifact_keys")
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_EVENTS_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_ORIGIN_TIME_ERROR_S_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_EPICENTRAL_ERROR_KM_FIELD_NUMBER: _ClassVar[int]
    MAGNITUDE_BIAS_FIELD_NUMBER: _ClassVar[int]
    MAGNITUDE_RMSE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_KEYS_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    predicted_events: int
    reference_events: int
    matched: int
    precision: float
    recall: float
    median_origin_time_error_s: float
    median_epicentral_error_km: float
    magnitude_bias: float
    magnitude_rmse: float
    artifact_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, evaluation_id: _Optional[str] = ..., predicted_events: _Optional[int] = ..., reference_events: _Optional[int] = ..., matched: _Optional[int] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., median_origin_time_error_s: _Optional[float] = ..., median_epicentral_error_km: _Optional[float] = ..., magnitude_bias: _Optional[float] = ..., magnitude_rmse: _Optional[float] = ..., artifact_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class DownloadCatalogArtifactRequest(_message.Message):
    __slots__ = ("job_id", "path")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    path: str
    def __init__(self, job_id: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class DownloadCatalogArtifactResponse(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    def __init__(self, chunk: _Optional[bytes] = ...) -> None: ...
