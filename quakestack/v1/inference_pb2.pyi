import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from quakestack.v1 import common_pb2 as _common_pb2
from quakestack.v1 import trainer_pb2 as _trainer_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoadModelRequest(_message.Message):
    __slots__ = ("name", "version", "device", "max_batch_size", "max_queue_delay_us", "instances", "max_queue_size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_DELAY_US_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    device: str
    max_batch_size: int
    max_queue_delay_us: int
    instances: int
    max_queue_size: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., device: _Optional[str] = ..., max_batch_size: _Optional[int] = ..., max_queue_delay_us: _Optional[int] = ..., instances: _Optional[int] = ..., max_queue_size: _Optional[int] = ...) -> None: ...

class LoadedModel(_message.Message):
    __slots__ = ("name", "version", "device", "task", "input_spec", "memory_bytes", "batches_served", "windows_served", "max_batch_size", "max_queue_delay_us", "instances", "load_time", "last_used_time", "class_names")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    INPUT_SPEC_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    BATCHES_SERVED_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_SERVED_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_DELAY_US_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    LOAD_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_TIME_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    device: str
    task: _common_pb2.Task
    input_spec: _trainer_pb2.InputSpec
    memory_bytes: int
    batches_served: int
    windows_served: int
    max_batch_size: int
    max_queue_delay_us: int
    instances: int
    load_time: _timestamp_pb2.Timestamp
    last_used_time: _timestamp_pb2.Timestamp
    class_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., device: _Optional[str] = ..., task: _Optional[_Union[_common_pb2.Task, str]] = ..., input_spec: _Optional[_Union[_trainer_pb2.InputSpec, _Mapping]] = ..., memory_bytes: _Optional[int] = ..., batches_served: _Optional[int] = ..., windows_served: _Optional[int] = ..., max_batch_size: _Optional[int] = ..., max_queue_delay_us: _Optional[int] = ..., instances: _Optional[int] = ..., load_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., class_names: _Optional[_Iterable[str]] = ...) -> None: ...

class LoadModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: LoadedModel
    def __init__(self, model: _Optional[_Union[LoadedModel, _Mapping]] = ...) -> None: ...

class UnloadModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UnloadModelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListLoadedModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLoadedModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[LoadedModel]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[LoadedModel, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("model", "windows", "extra_inputs")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_INPUTS_FIELD_NUMBER: _ClassVar[int]
    model: str
    windows: _common_pb2.Waveforms
    extra_inputs: _containers.RepeatedCompositeFieldContainer[_common_pb2.ExtraInput]
    def __init__(self, model: _Optional[str] = ..., windows: _Optional[_Union[_common_pb2.Waveforms, _Mapping]] = ..., extra_inputs: _Optional[_Iterable[_Union[_common_pb2.ExtraInput, _Mapping]]] = ...) -> None: ...

class WindowPrediction(_message.Message):
    __slots__ = ("magnitude", "magnitude_std", "class_probabilities", "detection_probability", "location_cluster")
    MAGNITUDE_FIELD_NUMBER: _ClassVar[int]
    MAGNITUDE_STD_FIELD_NUMBER: _ClassVar[int]
    CLASS_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    DETECTION_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    LOCATION_CLUSTER_FIELD_NUMBER: _ClassVar[int]
    magnitude: float
    magnitude_std: float
    class_probabilities: _containers.RepeatedScalarFieldContainer[float]
    detection_probability: float
    location_cluster: int
    def __init__(self, magnitude: _Optional[float] = ..., magnitude_std: _Optional[float] = ..., class_probabilities: _Optional[_Iterable[float]] = ..., detection_probability: _Optional[float] = ..., location_cluster: _Optional[int] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("model", "model_version", "request_id", "class_names", "predictions")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    model_version: int
    request_id: str
    class_names: _containers.RepeatedScalarFieldContainer[str]
    predictions: _containers.RepeatedCompositeFieldContainer[WindowPrediction]
    def __init__(self, model: _Optional[str] = ..., model_version: _Optional[int] = ..., request_id: _Optional[str] = ..., class_names: _Optional[_Iterable[str]] = ..., predictions: _Optional[_Iterable[_Union[WindowPrediction, _Mapping]]] = ...) -> None: ...

class AnnotateConfig(_message.Message):
    __slots__ = ("model", "stride_s", "threshold", "magnitude_model", "input_policy")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STRIDE_S_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAGNITUDE_MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_POLICY_FIELD_NUMBER: _ClassVar[int]
    model: str
    stride_s: float
    threshold: float
    magnitude_model: str
    input_policy: InputPolicy
    def __init__(self, model: _Optional[str] = ..., stride_s: _Optional[float] = ..., threshold: _Optional[float] = ..., magnitude_model: _Optional[str] = ..., input_policy: _Optional[_Union[InputPolicy, _Mapping]] = ...) -> None: ...

class InputPolicy(_message.Message):
    __slots__ = ("max_upsampling", "missing_components")
    MAX_UPSAMPLING_FIELD_NUMBER: _ClassVar[int]
    MISSING_COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    max_upsampling: float
    missing_components: str
    def __init__(self, max_upsampling: _Optional[float] = ..., missing_components: _Optional[str] = ...) -> None: ...

class StationInput(_message.Message):
    __slots__ = ("station", "outcome", "components", "resampled_from_hz", "gap_filled_samples", "zero_components", "refused")
    STATION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    RESAMPLED_FROM_HZ_FIELD_NUMBER: _ClassVar[int]
    GAP_FILLED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    ZERO_COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    station: str
    outcome: str
    components: str
    resampled_from_hz: float
    gap_filled_samples: int
    zero_components: str
    refused: str
    def __init__(self, station: _Optional[str] = ..., outcome: _Optional[str] = ..., components: _Optional[str] = ..., resampled_from_hz: _Optional[float] = ..., gap_filled_samples: _Optional[int] = ..., zero_components: _Optional[str] = ..., refused: _Optional[str] = ...) -> None: ...

class ChannelChunk(_message.Message):
    __slots__ = ("seed_id", "start_time", "sampling_rate_hz", "data")
    SEED_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    seed_id: str
    start_time: _timestamp_pb2.Timestamp
    sampling_rate_hz: float
    data: bytes
    def __init__(self, seed_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sampling_rate_hz: _Optional[float] = ..., data: _Optional[bytes] = ...) -> None: ...

class AnnotateRequest(_message.Message):
    __slots__ = ("config", "chunk", "mseed")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    MSEED_FIELD_NUMBER: _ClassVar[int]
    config: AnnotateConfig
    chunk: ChannelChunk
    mseed: bytes
    def __init__(self, config: _Optional[_Union[AnnotateConfig, _Mapping]] = ..., chunk: _Optional[_Union[ChannelChunk, _Mapping]] = ..., mseed: _Optional[bytes] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("station", "start_time", "end_time", "peak_time", "probability", "magnitude", "class_label")
    STATION_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PEAK_TIME_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MAGNITUDE_FIELD_NUMBER: _ClassVar[int]
    CLASS_LABEL_FIELD_NUMBER: _ClassVar[int]
    station: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    peak_time: _timestamp_pb2.Timestamp
    probability: float
    magnitude: float
    class_label: str
    def __init__(self, station: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., peak_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., probability: _Optional[float] = ..., magnitude: _Optional[float] = ..., class_label: _Optional[str] = ...) -> None: ...

class Pick(_message.Message):
    __slots__ = ("station", "phase", "time", "probability")
    STATION_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    station: str
    phase: str
    time: _timestamp_pb2.Timestamp
    probability: float
    def __init__(self, station: _Optional[str] = ..., phase: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., probability: _Optional[float] = ...) -> None: ...

class AnnotateResponse(_message.Message):
    __slots__ = ("detections", "picks", "inputs", "warnings")
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    PICKS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    picks: _containers.RepeatedCompositeFieldContainer[Pick]
    inputs: _containers.RepeatedCompositeFieldContainer[StationInput]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., picks: _Optional[_Iterable[_Union[Pick, _Mapping]]] = ..., inputs: _Optional[_Iterable[_Union[StationInput, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class AnnotateFileRequest(_message.Message):
    __slots__ = ("model", "file", "stride_s", "threshold", "magnitude_model", "input_policy")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    STRIDE_S_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAGNITUDE_MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_POLICY_FIELD_NUMBER: _ClassVar[int]
    model: str
    file: _common_pb2.Location
    stride_s: float
    threshold: float
    magnitude_model: str
    input_policy: InputPolicy
    def __init__(self, model: _Optional[str] = ..., file: _Optional[_Union[_common_pb2.Location, _Mapping]] = ..., stride_s: _Optional[float] = ..., threshold: _Optional[float] = ..., magnitude_model: _Optional[str] = ..., input_policy: _Optional[_Union[InputPolicy, _Mapping]] = ...) -> None: ...

class AnnotateFileResponse(_message.Message):
    __slots__ = ("detections", "picks", "warnings", "inputs")
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    PICKS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    picks: _containers.RepeatedCompositeFieldContainer[Pick]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    inputs: _containers.RepeatedCompositeFieldContainer[StationInput]
    def __init__(self, detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., picks: _Optional[_Iterable[_Union[Pick, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ..., inputs: _Optional[_Iterable[_Union[StationInput, _Mapping]]] = ...) -> None: ...

class SubmitFeedbackRequest(_message.Message):
    __slots__ = ("request_id", "window_index", "true_magnitude", "true_label")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_INDEX_FIELD_NUMBER: _ClassVar[int]
    TRUE_MAGNITUDE_FIELD_NUMBER: _ClassVar[int]
    TRUE_LABEL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    window_index: int
    true_magnitude: float
    true_label: str
    def __init__(self, request_id: _Optional[str] = ..., window_index: _Optional[int] = ..., true_magnitude: _Optional[float] = ..., true_label: _Optional[str] = ...) -> None: ...

class SubmitFeedbackResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExportModelRequest(_message.Message):
    __slots__ = ("name", "version", "format", "max_batch_size", "max_queue_delay_us")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_DELAY_US_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    format: str
    max_batch_size: int
    max_queue_delay_us: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., format: _Optional[str] = ..., max_batch_size: _Optional[int] = ..., max_queue_delay_us: _Optional[int] = ...) -> None: ...

class ExportedFile(_message.Message):
    __slots__ = ("path", "content", "sha256")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    path: str
    content: bytes
    sha256: str
    def __init__(self, path: _Optional[str] = ..., content: _Optional[bytes] = ..., sha256: _Optional[str] = ...) -> None: ...

class ExportModelResponse(_message.Message):
    __slots__ = ("name", "version", "format", "files")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    format: str
    files: _containers.RepeatedCompositeFieldContainer[ExportedFile]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., format: _Optional[str] = ..., files: _Optional[_Iterable[_Union[ExportedFile, _Mapping]]] = ...) -> None: ...
