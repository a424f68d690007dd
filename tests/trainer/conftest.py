"""Fixtures for trainer tests: a published synthetic dataset and stubs on the session stack."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import struct_pb2

from quakestack.data.shards import read_shard
from quakestack.v1 import common_pb2, trainer_pb2, trainer_pb2_grpc
from tests.datasets import _built, publish_synthetic_dataset

MAGNITUDE_DATASET = dict(n_events=600, n_noise=40, seed=1, length_s=60.0)
FAST_MAGNITUDE_HP = {"n_samples": 3000, "learning_rate": 0.005, "batch_size": 16}


@pytest.fixture(scope="session")
def magnitude_dataset(store, metadata, dataset_root) -> str:
    publish_synthetic_dataset(store, metadata, "syn-magnitude", dataset_root, **MAGNITUDE_DATASET)
    return "syn-magnitude"


@pytest.fixture(scope="session")
def mean_baseline_rmse(dataset_root) -> float:
    """RMSE of predicting the training mean on the validation split."""
    directory = Path(_built(str(dataset_root), *MAGNITUDE_DATASET.values()))
    values = {}
    for split in ("train", "val"):
        mags = []
        for shard in sorted((directory / "shards" / split).iterdir()):
            _, meta = read_shard(str(shard))
            mags.append(meta.loc[meta.trace_category != "noise", "source_magnitude"].to_numpy(float))
        values[split] = np.concatenate(mags)
    return float(np.sqrt(np.mean((values["val"] - values["train"].mean()) ** 2)))


@pytest.fixture(scope="session")
def trainer(trainer_channel) -> trainer_pb2_grpc.TrainerServiceStub:
    return trainer_pb2_grpc.TrainerServiceStub(trainer_channel)


@pytest.fixture(scope="session")
def registry(trainer_channel) -> trainer_pb2_grpc.ModelRegistryServiceStub:
    return trainer_pb2_grpc.ModelRegistryServiceStub(trainer_channel)


def hyper(**values) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def create_job(stub, dataset: str, architecture: str = "convnetquake_ingv", **hp) -> trainer_pb2.TrainingJob:
    request = trainer_pb2.CreateTrainingJobRequest(dataset=dataset, architecture=architecture,
                                                   hyper_parameters=hyper(**{**FAST_MAGNITUDE_HP, **hp}))
    return stub.CreateTrainingJob(request, timeout=30).job


def state_name(value: int) -> str:
    return common_pb2.JobState.Name(value).removeprefix("JOB_STATE_")


def wait_for_job(stub, job_id: str, predicate, timeout_s: float = 240) -> trainer_pb2.TrainingJob:
    deadline = time.monotonic() + timeout_s
    while True:
        job = stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=job_id), timeout=10).job
        if predicate(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} stuck in {state_name(job.state)} (epochs {job.epochs_done})")
        time.sleep(0.2)


def finished(job) -> bool:
    return state_name(job.state) in {"SUCCEEDED", "FAILED", "CANCELLED", "STOPPED"}


def progress(stub, job_id: str, timeout_s: float = 300) -> list[trainer_pb2.StreamTrainingProgressResponse]:
    return list(stub.StreamTrainingProgress(trainer_pb2.StreamTrainingProgressRequest(job_id=job_id),
                                            timeout=timeout_s))


def epochs_of(events) -> list[int]:
    return [e.epoch.epoch for e in events if e.WhichOneof("event") == "epoch"]


def metric(metrics, name: str) -> float:
    for m in metrics:
        if m.name == name:
            return m.value
    raise KeyError(name)


def stored_events(db, job_id: str) -> list[dict]:
    """The job's event log as stored (every stored event is one the fold accepted)."""
    from quakestack.metadata.jobs import JobStore

    return JobStore(db).all_events(job_id)


def rpc_error(fn) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as excinfo:
        fn()
    return excinfo.value
