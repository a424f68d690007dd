import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from quakestack.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SourceFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_FORMAT_UNSPECIFIED: _ClassVar[SourceFormat]
    SOURCE_FORMAT_STEAD: _ClassVar[SourceFormat]
    SOURCE_FORMAT_SEISBENCH: _ClassVar[SourceFormat]
    SOURCE_FORMAT_WAVEFORM_CATALOG: _ClassVar[SourceFormat]

class CatalogFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CATALOG_FORMAT_UNSPECIFIED: _ClassVar[CatalogFormat]
    CATALOG_FORMAT_QUAKEML: _ClassVar[CatalogFormat]
    CATALOG_FORMAT_NORDIC: _ClassVar[CatalogFormat]
    CATALOG_FORMAT_CSV: _ClassVar[CatalogFormat]

class GapPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GAP_POLICY_UNSPECIFIED: _ClassVar[GapPolicy]
    GAP_POLICY_DROP: _ClassVar[GapPolicy]
    GAP_POLICY_FILL_ZERO: _ClassVar[GapPolicy]
    GAP_POLICY_INTERPOLATE: _ClassVar[GapPolicy]

class Normalization(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NORMALIZATION_UNSPECIFIED: _ClassVar[Normalization]
    NORMALIZATION_NONE: _ClassVar[Normalization]
    NORMALIZATION_STD: _ClassVar[Normalization]
    NORMALIZATION_PEAK: _ClassVar[Normalization]

class SplitStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPLIT_STRATEGY_UNSPECIFIED: _ClassVar[SplitStrategy]
    SPLIT_STRATEGY_BY_EVENT: _ClassVar[SplitStrategy]
    SPLIT_STRATEGY_BY_TIME: _ClassVar[SplitStrategy]

class SampleDtype(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SAMPLE_DTYPE_UNSPECIFIED: _ClassVar[SampleDtype]
    SAMPLE_DTYPE_FLOAT32: _ClassVar[SampleDtype]
    SAMPLE_DTYPE_FLOAT16: _ClassVar[SampleDtype]
SOURCE_FORMAT_UNSPECIFIED: SourceFormat
SOURCE_FORMAT_STEAD: SourceFormat
SOURCE_FORMAT_SEISBENCH: SourceFormat
SOURCE_FORMAT_WAVEFORM_CATALOG: SourceFormat
CATALOG_FORMAT_UNSPECIFIED: CatalogFormat
CATALOG_FORMAT_QUAKEML: CatalogFormat
CATALOG_FORMAT_NORDIC: CatalogFormat
CATALOG_FORMAT_CSV: CatalogFormat
GAP_POLICY_UNSPECIFIED: GapPolicy
GAP_POLICY_DROP: GapPolicy
GAP_POLICY_FILL_ZERO: GapPolicy
GAP_POLICY_INTERPOLATE: GapPolicy
NORMALIZATION_UNSPECIFIED: Normalization
NORMALIZATION_NONE: Normalization
NORMALIZATION_STD: Normalization
NORMALIZATION_PEAK: Normalization
SPLIT_STRATEGY_UNSPECIFIED: SplitStrategy
SPLIT_STRATEGY_BY_EVENT: SplitStrategy
SPLIT_STRATEGY_BY_TIME: SplitStrategy
SAMPLE_DTYPE_UNSPECIFIED: SampleDtype
SAMPLE_DTYPE_FLOAT32: SampleDtype
SAMPLE_DTYPE_FLOAT16: SampleDtype

class UploadFileHeader(_message.Message):
    __slots__ = ("filename", "size_bytes", "sha256", "archive_key", "upload_id")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    filename: str
    size_bytes: int
    sha256: str
    archive_key: str
    upload_id: str
    def __init__(self, filename: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., archive_key: _Optional[str] = ..., upload_id: _Optional[str] = ...) -> None: ...

class UploadFileRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadFileHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadFileHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadFileResponse(_message.Message):
    __slots__ = ("upload_id", "object_key", "size_bytes", "sha256", "already_stored")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ALREADY_STORED_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    object_key: str
    size_bytes: int
    sha256: str
    already_stored: bool
    def __init__(self, upload_id: _Optional[str] = ..., object_key: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., already_stored: _Optional[bool] = ...) -> None: ...

class DataSource(_message.Message):
    __slots__ = ("format", "waveforms", "catalog", "catalog_format", "format_name")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    WAVEFORMS_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FORMAT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_NAME_FIELD_NUMBER: _ClassVar[int]
    format: SourceFormat
    waveforms: _common_pb2.Location
    catalog: _common_pb2.Location
    catalog_format: CatalogFormat
    format_name: str
    def __init__(self, format: _Optional[_Union[SourceFormat, str]] = ..., waveforms: _Optional[_Union[_common_pb2.Location, _Mapping]] = ..., catalog: _Optional[_Union[_common_pb2.Location, _Mapping]] = ..., catalog_format: _Optional[_Union[CatalogFormat, str]] = ..., format_name: _Optional[str] = ...) -> None: ...

class WindowSpec(_message.Message):
    __slots__ = ("length_s", "sampling_rate_hz", "p_offset_s", "p_offset_min_s", "p_offset_max_s", "include_noise", "noise_windows_per_event", "location_clusters", "noise_margin_s")
    LENGTH_S_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    P_OFFSET_S_FIELD_NUMBER: _ClassVar[int]
    P_OFFSET_MIN_S_FIELD_NUMBER: _ClassVar[int]
    P_OFFSET_MAX_S_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_NOISE_FIELD_NUMBER: _ClassVar[int]
    NOISE_WINDOWS_PER_EVENT_FIELD_NUMBER: _ClassVar[int]
    LOCATION_CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    NOISE_MARGIN_S_FIELD_NUMBER: _ClassVar[int]
    length_s: float
    sampling_rate_hz: float
    p_offset_s: float
    p_offset_min_s: float
    p_offset_max_s: float
    include_noise: bool
    noise_windows_per_event: int
    location_clusters: int
    noise_margin_s: float
    def __init__(self, length_s: _Optional[float] = ..., sampling_rate_hz: _Optional[float] = ..., p_offset_s: _Optional[float] = ..., p_offset_min_s: _Optional[float] = ..., p_offset_max_s: _Optional[float] = ..., include_noise: _Optional[bool] = ..., noise_windows_per_event: _Optional[int] = ..., location_clusters: _Optional[int] = ..., noise_margin_s: _Optional[float] = ...) -> None: ...

class Preprocessing(_message.Message):
    __slots__ = ("detrend", "taper_fraction", "freqmin_hz", "freqmax_hz", "component_order", "gap_policy", "normalization", "max_upsampling")
    DETREND_FIELD_NUMBER: _ClassVar[int]
    TAPER_FRACTION_FIELD_NUMBER: _ClassVar[int]
    FREQMIN_HZ_FIELD_NUMBER: _ClassVar[int]
    FREQMAX_HZ_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_ORDER_FIELD_NUMBER: _ClassVar[int]
    GAP_POLICY_FIELD_NUMBER: _ClassVar[int]
    NORMALIZATION_FIELD_NUMBER: _ClassVar[int]
    MAX_UPSAMPLING_FIELD_NUMBER: _ClassVar[int]
    detrend: bool
    taper_fraction: float
    freqmin_hz: float
    freqmax_hz: float
    component_order: str
    gap_policy: GapPolicy
    normalization: Normalization
    max_upsampling: float
    def __init__(self, detrend: _Optional[bool] = ..., taper_fraction: _Optional[float] = ..., freqmin_hz: _Optional[float] = ..., freqmax_hz: _Optional[float] = ..., component_order: _Optional[str] = ..., gap_policy: _Optional[_Union[GapPolicy, str]] = ..., normalization: _Optional[_Union[Normalization, str]] = ..., max_upsampling: _Optional[float] = ...) -> None: ...

class Filters(_message.Message):
    __slots__ = ("magnitude_types", "min_magnitude", "max_magnitude", "min_snr_db", "min_distance_km", "max_distance_km", "max_count")
    MAGNITUDE_TYPES_FIELD_NUMBER: _ClassVar[int]
    MIN_MAGNITUDE_FIELD_NUMBER: _ClassVar[int]
    MAX_MAGNITUDE_FIELD_NUMBER: _ClassVar[int]
    MIN_SNR_DB_FIELD_NUMBER: _ClassVar[int]
    MIN_DISTANCE_KM_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_KM_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    magnitude_types: _containers.RepeatedScalarFieldContainer[str]
    min_magnitude: float
    max_magnitude: float
    min_snr_db: float
    min_distance_km: float
    max_distance_km: float
    max_count: int
    def __init__(self, magnitude_types: _Optional[_Iterable[str]] = ..., min_magnitude: _Optional[float] = ..., max_magnitude: _Optional[float] = ..., min_snr_db: _Optional[float] = ..., min_distance_km: _Optional[float] = ..., max_distance_km: _Optional[float] = ..., max_count: _Optional[int] = ...) -> None: ...

class SplitSpec(_message.Message):
    __slots__ = ("train", "val", "test", "strategy")
    TRAIN_FIELD_NUMBER: _ClassVar[int]
    VAL_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    train: float
    val: float
    test: float
    strategy: SplitStrategy
    def __init__(self, train: _Optional[float] = ..., val: _Optional[float] = ..., test: _Optional[float] = ..., strategy: _Optional[_Union[SplitStrategy, str]] = ...) -> None: ...

class CreateDatasetRequest(_message.Message):
    __slots__ = ("name", "sources", "window", "preprocessing", "filters", "split", "shard_size", "dtype", "seed", "description", "workers")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    PREPROCESSING_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    SHARD_SIZE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    sources: _containers.RepeatedCompositeFieldContainer[DataSource]
    window: WindowSpec
    preprocessing: Preprocessing
    filters: Filters
    split: SplitSpec
    shard_size: int
    dtype: SampleDtype
    seed: int
    description: str
    workers: int
    def __init__(self, name: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[DataSource, _Mapping]]] = ..., window: _Optional[_Union[WindowSpec, _Mapping]] = ..., preprocessing: _Optional[_Union[Preprocessing, _Mapping]] = ..., filters: _Optional[_Union[Filters, _Mapping]] = ..., split: _Optional[_Union[SplitSpec, _Mapping]] = ..., shard_size: _Optional[int] = ..., dtype: _Optional[_Union[SampleDtype, str]] = ..., seed: _Optional[int] = ..., description: _Optional[str] = ..., workers: _Optional[int] = ...) -> None: ...

class CreateDatasetResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: DatasetJob
    def __init__(self, job: _Optional[_Union[DatasetJob, _Mapping]] = ...) -> None: ...

class DatasetJobProgress(_message.Message):
    __slots__ = ("phase", "items_done", "items_total", "windows_written", "bytes_written", "windows_per_s", "eta_s", "windows_gap_filled")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_DONE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    BYTES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_PER_S_FIELD_NUMBER: _ClassVar[int]
    ETA_S_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_GAP_FILLED_FIELD_NUMBER: _ClassVar[int]
    phase: str
    items_done: int
    items_total: int
    windows_written: int
    bytes_written: int
    windows_per_s: float
    eta_s: float
    windows_gap_filled: int
    def __init__(self, phase: _Optional[str] = ..., items_done: _Optional[int] = ..., items_total: _Optional[int] = ..., windows_written: _Optional[int] = ..., bytes_written: _Optional[int] = ..., windows_per_s: _Optional[float] = ..., eta_s: _Optional[float] = ..., windows_gap_filled: _Optional[int] = ...) -> None: ...

class DatasetJob(_message.Message):
    __slots__ = ("job_id", "dataset", "state", "progress", "skipped", "warnings", "error", "create_time", "end_time")
    class SkippedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    dataset: str
    state: _common_pb2.JobState
    progress: DatasetJobProgress
    skipped: _containers.ScalarMap[str, int]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    error: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., dataset: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., progress: _Optional[_Union[DatasetJobProgress, _Mapping]] = ..., skipped: _Optional[_Mapping[str, int]] = ..., warnings: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetDatasetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetDatasetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: DatasetJob
    def __init__(self, job: _Optional[_Union[DatasetJob, _Mapping]] = ...) -> None: ...

class ListDatasetJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state", "dataset", "owner", "created_after", "created_before")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: _common_pb2.JobState
    dataset: str
    owner: str
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., dataset: _Optional[str] = ..., owner: _Optional[str] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDatasetJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[DatasetJob]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[DatasetJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchDatasetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchDatasetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: DatasetJob
    def __init__(self, job: _Optional[_Union[DatasetJob, _Mapping]] = ...) -> None: ...

class CancelDatasetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelDatasetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: DatasetJob
    def __init__(self, job: _Optional[_Union[DatasetJob, _Mapping]] = ...) -> None: ...

class SplitCounts(_message.Message):
    __slots__ = ("split", "windows", "categories")
    class CategoriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    split: str
    windows: int
    categories: _containers.ScalarMap[str, int]
    def __init__(self, split: _Optional[str] = ..., windows: _Optional[int] = ..., categories: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("name", "version", "manifest_sha256", "splits", "window_samples", "sampling_rate_hz", "component_order", "size_bytes", "create_time", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_SHA256_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_ORDER_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    manifest_sha256: str
    splits: _containers.RepeatedCompositeFieldContainer[SplitCounts]
    window_samples: int
    sampling_rate_hz: float
    component_order: str
    size_bytes: int
    create_time: _timestamp_pb2.Timestamp
    description: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., manifest_sha256: _Optional[str] = ..., splits: _Optional[_Iterable[_Union[SplitCounts, _Mapping]]] = ..., window_samples: _Optional[int] = ..., sampling_rate_hz: _Optional[float] = ..., component_order: _Optional[str] = ..., size_bytes: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetDatasetResponse(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets", "next_page_token")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[Dataset]
    next_page_token: str
    def __init__(self, datasets: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SampleDatasetRequest(_message.Message):
    __slots__ = ("name", "split", "count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    split: str
    count: int
    def __init__(self, name: _Optional[str] = ..., split: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class SampleDatasetResponse(_message.Message):
    __slots__ = ("waveforms", "labels", "split")
    WAVEFORMS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    waveforms: _common_pb2.Waveforms
    labels: _containers.RepeatedCompositeFieldContainer[WindowLabel]
    split: str
    def __init__(self, waveforms: _Optional[_Union[_common_pb2.Waveforms, _Mapping]] = ..., labels: _Optional[_Iterable[_Union[WindowLabel, _Mapping]]] = ..., split: _Optional[str] = ...) -> None: ...

class WindowLabel(_message.Message):
    __slots__ = ("trace_name", "category", "p_arrival_sample", "s_arrival_sample", "magnitude", "magnitude_type", "station")
    TRACE_NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    P_ARRIVAL_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    S_ARRIVAL_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    MAGNITUDE_FIELD_NUMBER: _ClassVar[int]
    MAGNITUDE_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATION_FIELD_NUMBER: _ClassVar[int]
    trace_name: str
    category: str
    p_arrival_sample: float
    s_arrival_sample: float
    magnitude: float
    magnitude_type: str
    station: str
    def __init__(self, trace_name: _Optional[str] = ..., category: _Optional[str] = ..., p_arrival_sample: _Optional[float] = ..., s_arrival_sample: _Optional[float] = ..., magnitude: _Optional[float] = ..., magnitude_type: _Optional[str] = ..., station: _Optional[str] = ...) -> None: ...

class DescribeDatasetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DescribeDatasetResponse(_message.Message):
    __slots__ = ("dataset", "manifest")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    manifest: _struct_pb2.Struct
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ..., manifest: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("name", "force")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    force: bool
    def __init__(self, name: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ("objects_deleted",)
    OBJECTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    objects_deleted: int
    def __init__(self, objects_deleted: _Optional[int] = ...) -> None: ...
