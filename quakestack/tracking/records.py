"""What an export reads from quakestack, as plain records: jobs, registered versions and sweeps.

The exporter works on these, not on protobuf or gRPC, so that where they come from (the services, see
`tracking.source`) and where they go (MLflow, see `tracking.mlflow_export`) change independently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Epoch:
    """One epoch's finite scalars (tracking.tensorboard.epoch_scalars) and when it ended."""

    epoch: int
    time_ms: int
    scalars: dict[str, float]


@dataclass(frozen=True)
class Job:
    """A training job as an export run shows it."""

    job_id: str
    display_name: str
    dataset: str
    dataset_manifest_sha256: str
    architecture: str
    device: str
    state: str  # SUCCEEDED, FAILED, ... (JobState without its prefix)
    create_time_ms: int
    update_time_ms: int
    epochs_done: int
    best_epoch: int
    error: str
    hyper_parameters: dict[str, Any]
    epochs: list[Epoch]


@dataclass(frozen=True)
class Version:
    """A registered model version: the job and epoch it came from, its card (as JSON) and aliases."""

    name: str
    version: int
    job_id: str
    epoch: int
    architecture: str
    dataset: str
    metrics: dict[str, float]
    card: dict[str, Any]
    create_time_ms: int
    aliases: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Trial:
    """One trial of a sweep: a training job (empty while the trial waits) and its outcome."""

    number: int
    job_id: str
    state: str  # RUNNING, COMPLETE, PRUNED, FAIL, WAITING
    parameters: dict[str, Any]
    value: float | None


@dataclass(frozen=True)
class Sweep:
    """A sweep as a parent run: its objective, outcome and trials (each a job's run nested under it)."""

    sweep_id: str
    display_name: str
    dataset: str
    architecture: str
    objective_metric: str
    objective_direction: str  # MINIMIZE or MAXIMIZE
    state: str
    create_time_ms: int
    update_time_ms: int
    settings: dict[str, Any]  # sampler, pruner, limits, the search space: the parent run's params
    trials: list[Trial]
    best_trial: int | None = None
    importances: dict[str, float] = field(default_factory=dict)


class Source(Protocol):
    """Where an export reads quakestack's records (the services over gRPC, in practice)."""

    def job_ids(self) -> list[str]: ...

    def job(self, job_id: str) -> Job: ...

    def job_archive(self, job_id: str, name: str) -> bytes: ...

    def model_names(self) -> list[str]: ...

    def versions(self, name: str) -> list[Version]: ...

    def weights(self, version: Version) -> bytes | None: ...

    def sweep_ids(self) -> list[str]: ...

    def sweep(self, sweep_id: str) -> Sweep: ...
