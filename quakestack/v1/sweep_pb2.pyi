import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from quakestack.v1 import common_pb2 as _common_pb2
from quakestack.v1 import trainer_pb2 as _trainer_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ObjectiveDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OBJECTIVE_DIRECTION_UNSPECIFIED: _ClassVar[ObjectiveDirection]
    OBJECTIVE_DIRECTION_MINIMIZE: _ClassVar[ObjectiveDirection]
    OBJECTIVE_DIRECTION_MAXIMIZE: _ClassVar[ObjectiveDirection]

class SweepSampler(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWEEP_SAMPLER_UNSPECIFIED: _ClassVar[SweepSampler]
    SWEEP_SAMPLER_RANDOM: _ClassVar[SweepSampler]
    SWEEP_SAMPLER_TPE: _ClassVar[SweepSampler]
    SWEEP_SAMPLER_GRID: _ClassVar[SweepSampler]

class SweepPruner(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWEEP_PRUNER_UNSPECIFIED: _ClassVar[SweepPruner]
    SWEEP_PRUNER_NONE: _ClassVar[SweepPruner]
    SWEEP_PRUNER_MEDIAN: _ClassVar[SweepPruner]
    SWEEP_PRUNER_HYPERBAND: _ClassVar[SweepPruner]

class SearchParameterType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_PARAMETER_TYPE_UNSPECIFIED: _ClassVar[SearchParameterType]
    SEARCH_PARAMETER_TYPE_FLOAT: _ClassVar[SearchParameterType]
    SEARCH_PARAMETER_TYPE_INT: _ClassVar[SearchParameterType]
    SEARCH_PARAMETER_TYPE_CATEGORICAL: _ClassVar[SearchParameterType]

class TrialState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIAL_STATE_UNSPECIFIED: _ClassVar[TrialState]
    TRIAL_STATE_RUNNING: _ClassVar[TrialState]
    TRIAL_STATE_COMPLETE: _ClassVar[TrialState]
    TRIAL_STATE_PRUNED: _ClassVar[TrialState]
    TRIAL_STATE_FAIL: _ClassVar[TrialState]
    TRIAL_STATE_WAITING: _ClassVar[TrialState]
OBJECTIVE_DIRECTION_UNSPECIFIED: ObjectiveDirection
OBJECTIVE_DIRECTION_MINIMIZE: ObjectiveDirection
OBJECTIVE_DIRECTION_MAXIMIZE: ObjectiveDirection
SWEEP_SAMPLER_UNSPECIFIED: SweepSampler
SWEEP_SAMPLER_RANDOM: SweepSampler
SWEEP_SAMPLER_TPE: SweepSampler
SWEEP_SAMPLER_GRID: SweepSampler
SWEEP_PRUNER_UNSPECIFIED: SweepPruner
SWEEP_PRUNER_NONE: SweepPruner
SWEEP_PRUNER_MEDIAN: SweepPruner
SWEEP_PRUNER_HYPERBAND: SweepPruner
SEARCH_PARAMETER_TYPE_UNSPECIFIED: SearchParameterType
SEARCH_PARAMETER_TYPE_FLOAT: SearchParameterType
SEARCH_PARAMETER_TYPE_INT: SearchParameterType
SEARCH_PARAMETER_TYPE_CATEGORICAL: SearchParameterType
TRIAL_STATE_UNSPECIFIED: TrialState
TRIAL_STATE_RUNNING: TrialState
TRIAL_STATE_COMPLETE: TrialState
TRIAL_STATE_PRUNED: TrialState
TRIAL_STATE_FAIL: TrialState
TRIAL_STATE_WAITING: TrialState

class Objective(_message.Message):
    __slots__ = ("metric", "direction", "target")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    metric: str
    direction: ObjectiveDirection
    target: float
    def __init__(self, metric: _Optional[str] = ..., direction: _Optional[_Union[ObjectiveDirection, str]] = ..., target: _Optional[float] = ...) -> None: ...

class SearchCondition(_message.Message):
    __slots__ = ("parameter", "values")
    PARAMETER_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    parameter: str
    values: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    def __init__(self, parameter: _Optional[str] = ..., values: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ...) -> None: ...

class SearchParameter(_message.Message):
    __slots__ = ("name", "type", "low", "high", "log", "step", "choices", "condition")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: SearchParameterType
    low: float
    high: float
    log: bool
    step: float
    choices: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    condition: SearchCondition
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[SearchParameterType, str]] = ..., low: _Optional[float] = ..., high: _Optional[float] = ..., log: _Optional[bool] = ..., step: _Optional[float] = ..., choices: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ..., condition: _Optional[_Union[SearchCondition, _Mapping]] = ...) -> None: ...

class RegisterBest(_message.Message):
    __slots__ = ("model_name", "aliases")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_name: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateSweepRequest(_message.Message):
    __slots__ = ("dataset", "architecture", "hyper_parameters", "search_space", "objective", "sampler", "pruner", "parallel_trials", "max_trials", "max_failures", "time_budget_s", "enqueued_trials", "seed", "pruner_startup_trials", "pruner_warmup_epochs", "register_best", "device", "display_name")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    HYPER_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    PRUNER_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TRIALS_FIELD_NUMBER: _ClassVar[int]
    MAX_TRIALS_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILURES_FIELD_NUMBER: _ClassVar[int]
    TIME_BUDGET_S_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_TRIALS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PRUNER_STARTUP_TRIALS_FIELD_NUMBER: _ClassVar[int]
    PRUNER_WARMUP_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    REGISTER_BEST_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    architecture: str
    hyper_parameters: _struct_pb2.Struct
    search_space: _containers.RepeatedCompositeFieldContainer[SearchParameter]
    objective: Objective
    sampler: SweepSampler
    pruner: SweepPruner
    parallel_trials: int
    max_trials: int
    max_failures: int
    time_budget_s: float
    enqueued_trials: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    seed: int
    pruner_startup_trials: int
    pruner_warmup_epochs: int
    register_best: RegisterBest
    device: str
    display_name: str
    def __init__(self, dataset: _Optional[str] = ..., architecture: _Optional[str] = ..., hyper_parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., search_space: _Optional[_Iterable[_Union[SearchParameter, _Mapping]]] = ..., objective: _Optional[_Union[Objective, _Mapping]] = ..., sampler: _Optional[_Union[SweepSampler, str]] = ..., pruner: _Optional[_Union[SweepPruner, str]] = ..., parallel_trials: _Optional[int] = ..., max_trials: _Optional[int] = ..., max_failures: _Optional[int] = ..., time_budget_s: _Optional[float] = ..., enqueued_trials: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., seed: _Optional[int] = ..., pruner_startup_trials: _Optional[int] = ..., pruner_warmup_epochs: _Optional[int] = ..., register_best: _Optional[_Union[RegisterBest, _Mapping]] = ..., device: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class CreateSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...

class TrialValue(_message.Message):
    __slots__ = ("epoch", "value")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    value: float
    def __init__(self, epoch: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class SweepTrial(_message.Message):
    __slots__ = ("number", "job_id", "state", "parameters", "value", "intermediate_values", "start_time", "end_time", "message")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    INTERMEDIATE_VALUES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    number: int
    job_id: str
    state: TrialState
    parameters: _struct_pb2.Struct
    value: float
    intermediate_values: _containers.RepeatedCompositeFieldContainer[TrialValue]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    message: str
    def __init__(self, number: _Optional[int] = ..., job_id: _Optional[str] = ..., state: _Optional[_Union[TrialState, str]] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., value: _Optional[float] = ..., intermediate_values: _Optional[_Iterable[_Union[TrialValue, _Mapping]]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class RegisteredVersion(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class TrialCounts(_message.Message):
    __slots__ = ("running", "complete", "pruned", "failed", "waiting")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    PRUNED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    running: int
    complete: int
    pruned: int
    failed: int
    waiting: int
    def __init__(self, running: _Optional[int] = ..., complete: _Optional[int] = ..., pruned: _Optional[int] = ..., failed: _Optional[int] = ..., waiting: _Optional[int] = ...) -> None: ...

class Sweep(_message.Message):
    __slots__ = ("sweep_id", "display_name", "dataset", "architecture", "hyper_parameters", "search_space", "objective", "sampler", "pruner", "parallel_trials", "max_trials", "max_failures", "time_budget_s", "state", "error", "trial_counts", "best_trial", "registered", "importances", "create_time", "update_time", "trials", "seed", "register_best", "message")
    class ImportancesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    HYPER_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    PRUNER_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TRIALS_FIELD_NUMBER: _ClassVar[int]
    MAX_TRIALS_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILURES_FIELD_NUMBER: _ClassVar[int]
    TIME_BUDGET_S_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TRIAL_COUNTS_FIELD_NUMBER: _ClassVar[int]
    BEST_TRIAL_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    REGISTER_BEST_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    display_name: str
    dataset: str
    architecture: str
    hyper_parameters: _struct_pb2.Struct
    search_space: _containers.RepeatedCompositeFieldContainer[SearchParameter]
    objective: Objective
    sampler: SweepSampler
    pruner: SweepPruner
    parallel_trials: int
    max_trials: int
    max_failures: int
    time_budget_s: float
    state: _common_pb2.JobState
    error: str
    trial_counts: TrialCounts
    best_trial: SweepTrial
    registered: RegisteredVersion
    importances: _containers.ScalarMap[str, float]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    trials: _containers.RepeatedCompositeFieldContainer[SweepTrial]
    seed: int
    register_best: RegisterBest
    message: str
    def __init__(self, sweep_id: _Optional[str] = ..., display_name: _Optional[str] = ..., dataset: _Optional[str] = ..., architecture: _Optional[str] = ..., hyper_parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., search_space: _Optional[_Iterable[_Union[SearchParameter, _Mapping]]] = ..., objective: _Optional[_Union[Objective, _Mapping]] = ..., sampler: _Optional[_Union[SweepSampler, str]] = ..., pruner: _Optional[_Union[SweepPruner, str]] = ..., parallel_trials: _Optional[int] = ..., max_trials: _Optional[int] = ..., max_failures: _Optional[int] = ..., time_budget_s: _Optional[float] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., error: _Optional[str] = ..., trial_counts: _Optional[_Union[TrialCounts, _Mapping]] = ..., best_trial: _Optional[_Union[SweepTrial, _Mapping]] = ..., registered: _Optional[_Union[RegisteredVersion, _Mapping]] = ..., importances: _Optional[_Mapping[str, float]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trials: _Optional[_Iterable[_Union[SweepTrial, _Mapping]]] = ..., seed: _Optional[int] = ..., register_best: _Optional[_Union[RegisterBest, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class GetSweepRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class GetSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...

class ListSweepsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state", "dataset", "architecture")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: _common_pb2.JobState
    dataset: str
    architecture: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., dataset: _Optional[str] = ..., architecture: _Optional[str] = ...) -> None: ...

class ListSweepsResponse(_message.Message):
    __slots__ = ("sweeps", "next_page_token")
    SWEEPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sweeps: _containers.RepeatedCompositeFieldContainer[Sweep]
    next_page_token: str
    def __init__(self, sweeps: _Optional[_Iterable[_Union[Sweep, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchSweepRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class WatchSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...

class UpdateSweepRequest(_message.Message):
    __slots__ = ("sweep_id", "max_trials", "parallel_trials", "max_failures", "time_budget_s", "enqueue_trials")
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_TRIALS_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TRIALS_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILURES_FIELD_NUMBER: _ClassVar[int]
    TIME_BUDGET_S_FIELD_NUMBER: _ClassVar[int]
    ENQUEUE_TRIALS_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    max_trials: int
    parallel_trials: int
    max_failures: int
    time_budget_s: float
    enqueue_trials: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    def __init__(self, sweep_id: _Optional[str] = ..., max_trials: _Optional[int] = ..., parallel_trials: _Optional[int] = ..., max_failures: _Optional[int] = ..., time_budget_s: _Optional[float] = ..., enqueue_trials: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ...) -> None: ...

class UpdateSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...

class StopSweepRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class StopSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...

class CancelSweepRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class CancelSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...

class CompareRunsRequest(_message.Message):
    __slots__ = ("sweep_id", "job_ids", "metric")
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    metric: str
    def __init__(self, sweep_id: _Optional[str] = ..., job_ids: _Optional[_Iterable[str]] = ..., metric: _Optional[str] = ...) -> None: ...

class ComparedRun(_message.Message):
    __slots__ = ("job_id", "display_name", "architecture", "dataset", "state", "hyper_parameters", "objective", "epochs", "trial_number", "trial_state")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    HYPER_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    TRIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TRIAL_STATE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    display_name: str
    architecture: str
    dataset: str
    state: _common_pb2.JobState
    hyper_parameters: _struct_pb2.Struct
    objective: float
    epochs: _containers.RepeatedCompositeFieldContainer[_trainer_pb2.EpochMetrics]
    trial_number: int
    trial_state: TrialState
    def __init__(self, job_id: _Optional[str] = ..., display_name: _Optional[str] = ..., architecture: _Optional[str] = ..., dataset: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ..., hyper_parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., objective: _Optional[float] = ..., epochs: _Optional[_Iterable[_Union[_trainer_pb2.EpochMetrics, _Mapping]]] = ..., trial_number: _Optional[int] = ..., trial_state: _Optional[_Union[TrialState, str]] = ...) -> None: ...

class CompareRunsResponse(_message.Message):
    __slots__ = ("runs", "metric", "direction", "varying_parameters")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    VARYING_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[ComparedRun]
    metric: str
    direction: ObjectiveDirection
    varying_parameters: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, runs: _Optional[_Iterable[_Union[ComparedRun, _Mapping]]] = ..., metric: _Optional[str] = ..., direction: _Optional[_Union[ObjectiveDirection, str]] = ..., varying_parameters: _Optional[_Iterable[str]] = ...) -> None: ...
