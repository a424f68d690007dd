"""Invalid requests get the right status and a message naming the problem."""

from __future__ import annotations

import pytest

from quakestack.v1 import trainer_pb2
from tests.datasets import publish_synthetic_dataset
from tests.trainer.conftest import create_job, finished, hyper, rpc_error, state_name, wait_for_job


@pytest.mark.parametrize(("architecture", "hp", "code", "fragment"), [
    ("convnetquake_ingv", {"learning_rate": 5.0}, "INVALID_ARGUMENT", "learning_rate must be in [1e-07, 1"),
    ("convnetquake_ingv", {"batch_size": 0}, "INVALID_ARGUMENT", "batch_size must be in [1, 4096]"),
    ("convnetquake_ingv", {"epochs": 2.5}, "INVALID_ARGUMENT", "epochs must be an int"),
    ("convnetquake_ingv", {"optimizer": "lion"}, "INVALID_ARGUMENT", "optimizer must be one of"),
    ("convnetquake_ingv", {"n_samples": 1234}, "INVALID_ARGUMENT", "n_samples"),
    ("convnetquake_ingv", {"learning_rat": 0.1}, "INVALID_ARGUMENT", "unknown hyper-parameter(s) learning_rat"),
    ("no-such-net", {}, "INVALID_ARGUMENT", "unknown architecture 'no-such-net'; known:"),
])
def test_invalid_training_requests(trainer, magnitude_dataset, architecture, hp, code, fragment) -> None:
    request = trainer_pb2.CreateTrainingJobRequest(dataset=magnitude_dataset, architecture=architecture,
                                                   hyper_parameters=hyper(**hp))
    error = rpc_error(lambda: trainer.CreateTrainingJob(request, timeout=30))
    assert error.code().name == code, error.details()
    assert fragment in error.details()


def test_task_mismatch_names_the_problem(trainer, store, metadata, dataset_root) -> None:
    """A detector learns events against noise: a dataset without noise windows does not fit."""
    publish_synthetic_dataset(store, metadata, "syn-no-noise", dataset_root, n_events=30, n_noise=0, seed=2)
    request = trainer_pb2.CreateTrainingJobRequest(dataset="syn-no-noise", architecture="convnetquake")
    error = rpc_error(lambda: trainer.CreateTrainingJob(request, timeout=30))
    assert error.code().name == "FAILED_PRECONDITION"
    assert "convnetquake" in error.details() and "no noise windows" in error.details()


def test_unknown_dataset_and_job(trainer) -> None:
    error = rpc_error(lambda: trainer.CreateTrainingJob(trainer_pb2.CreateTrainingJobRequest(
        dataset="no-such-dataset", architecture="magnet"), timeout=30))
    assert error.code().name == "NOT_FOUND" and "no-such-dataset" in error.details()
    error = rpc_error(lambda: trainer.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id="nope")))
    assert error.code().name == "NOT_FOUND"
    error = rpc_error(lambda: list(trainer.StreamTrainingProgress(
        trainer_pb2.StreamTrainingProgressRequest(job_id="nope"))))
    assert error.code().name == "NOT_FOUND"


def test_device_that_is_not_there(trainer, magnitude_dataset) -> None:
    request = trainer_pb2.CreateTrainingJobRequest(dataset=magnitude_dataset, architecture="convnetquake_ingv",
                                                   device="cuda:3")
    error = rpc_error(lambda: trainer.CreateTrainingJob(request, timeout=30))
    assert error.code().name == "FAILED_PRECONDITION" and "cuda:3" in error.details()
    for device in ("tpu", "gpu", "cuda:x"):  # never silently the CPU: the one strict parser, with the forms
        request.device = device
        error = rpc_error(lambda: trainer.CreateTrainingJob(request, timeout=30))
        assert error.code().name == "INVALID_ARGUMENT", (device, error.details())
        assert repr(device) in error.details() and "auto, cpu, cuda or cuda:N" in error.details()


def test_evaluating_or_registering_untrained_weights(trainer, registry, magnitude_dataset) -> None:
    job = create_job(trainer, magnitude_dataset, epochs=40)
    trainer.CancelTrainingJob(trainer_pb2.CancelTrainingJobRequest(job_id=job.job_id))
    final = wait_for_job(trainer, job.job_id, finished, timeout_s=30)
    assert state_name(final.state) == "CANCELLED"
    if final.epochs_done:
        pytest.skip("the job finished an epoch before the cancel arrived")
    error = rpc_error(lambda: trainer.EvaluateModel(trainer_pb2.EvaluateModelRequest(
        checkpoint=trainer_pb2.CheckpointRef(job_id=job.job_id))))
    assert error.code().name == "FAILED_PRECONDITION" and "no trained weights" in error.details()
    error = rpc_error(lambda: registry.RegisterModel(trainer_pb2.RegisterModelRequest(
        name="never-trained", source=trainer_pb2.CheckpointRef(job_id=job.job_id))))
    assert error.code().name == "FAILED_PRECONDITION"


def test_registry_lookups(registry) -> None:
    error = rpc_error(lambda: registry.GetModel(trainer_pb2.GetModelRequest(name="no-such-model")))
    assert error.code().name == "NOT_FOUND"
    error = rpc_error(lambda: registry.GetModelVersion(trainer_pb2.GetModelVersionRequest(name="../x", version="1")))
    assert error.code().name == "INVALID_ARGUMENT"
    error = rpc_error(lambda: registry.RegisterModel(trainer_pb2.RegisterModelRequest(
        name="m", source=trainer_pb2.CheckpointRef(job_id="no-such-job"))))
    assert error.code().name == "NOT_FOUND"


@pytest.mark.parametrize("version", ["¹", "x", "-1", ""])
def test_version_must_be_an_ascii_number(registry, version: str) -> None:
    error = rpc_error(lambda: registry.DeleteModelVersion(trainer_pb2.DeleteModelVersionRequest(
        name="magnitude-test", version=version)))
    assert error.code().name == "INVALID_ARGUMENT" and "version must be a number" in error.details()


def test_artifacts_download_only_from_eval(trainer, magnitude_dataset) -> None:
    job = create_job(trainer, magnitude_dataset, epochs=1)
    wait_for_job(trainer, job.job_id, finished)
    evaluation = trainer.EvaluateModel(trainer_pb2.EvaluateModelRequest(
        checkpoint=trainer_pb2.CheckpointRef(job_id=job.job_id)), timeout=120)
    key = evaluation.artifact_keys[0]
    path = key.split("/", 2)[2]
    data = b"".join(c.chunk for c in trainer.DownloadArtifact(
        trainer_pb2.DownloadArtifactRequest(job_id=job.job_id, path=path), timeout=60))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    for bad, code in [("checkpoints/epoch-0001.pt", "INVALID_ARGUMENT"), ("eval/../checkpoints/x", "INVALID_ARGUMENT"),
                      ("/etc/passwd", "INVALID_ARGUMENT"), ("eval/none/missing.png", "NOT_FOUND")]:
        error = rpc_error(lambda bad=bad: list(trainer.DownloadArtifact(
            trainer_pb2.DownloadArtifactRequest(job_id=job.job_id, path=bad), timeout=30)))
        assert error.code().name == code, (bad, error.details())
