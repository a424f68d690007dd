"""A magnitude model trained through the service learns; evaluation, registry and downloads work."""

from __future__ import annotations

import io
from importlib import metadata as importlib_metadata

import torch
from google.protobuf.json_format import MessageToDict

from quakestack.model_store import ModelStore
from quakestack.models.zoo import build_model
from quakestack.v1 import trainer_pb2
from tests.trainer.conftest import create_job, epochs_of, metric, progress, state_name, stored_events


def test_magnitude_model_beats_the_mean_baseline(trainer, registry, store, metadata, magnitude_dataset,
                                                 mean_baseline_rmse) -> None:
    job = create_job(trainer, magnitude_dataset, epochs=15)
    events = progress(trainer, job.job_id)
    states = [state_name(e.state_change.state) for e in events if e.WhichOneof("event") == "state_change"]
    assert states[0] == "QUEUED" and "RUNNING" in states and states[-1] == "SUCCEEDED", states
    assert epochs_of(events) == list(range(1, 16))
    epochs = [e.epoch for e in events if e.WhichOneof("event") == "epoch"]
    best = min(epochs, key=lambda e: e.val_loss)
    assert all(torch.isfinite(torch.tensor(e.train_loss)) for e in epochs)
    assert metric(best.metrics, "rmse") <= 0.6 * mean_baseline_rmse, (metric(best.metrics, "rmse"), mean_baseline_rmse)
    assert {m.name for m in best.metrics} >= {"rmse", "mae", "r2", "residual_mean", "residual_std"}
    assert epochs[-1].samples_per_s > 0 and epochs[-1].elapsed_s > epochs[0].elapsed_s and epochs[-1].eta_s == 0

    # the history is persisted exactly as streamed
    stored = stored_events(metadata, job.job_id)
    assert [e["sequence"] for e in stored] == [e.sequence for e in events]
    assert [e["epoch"] for e in stored if e["type"] == "epoch"] == list(range(1, 16))

    final = trainer.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(job_id=job.job_id)).job
    assert final.best_epoch == best.epoch and final.epochs_done == 15
    checkpoints = trainer.ListCheckpoints(trainer_pb2.ListCheckpointsRequest(job_id=job.job_id)).checkpoints
    assert [c.epoch for c in checkpoints] == list(range(1, 16))

    # evaluation stores plots and reports the task's metrics
    evaluation = trainer.EvaluateModel(trainer_pb2.EvaluateModelRequest(
        checkpoint=trainer_pb2.CheckpointRef(job_id=job.job_id), split="test"), timeout=120)
    assert evaluation.windows > 0 and metric(evaluation.metrics, "rmse") < mean_baseline_rmse
    assert len(evaluation.artifact_keys) == 2
    for key in evaluation.artifact_keys:
        assert store.get_bytes(key)[:8] == b"\x89PNG\r\n\x1a\n"

    # registry: a version with lineage, an alias, weights that load weights-only
    version = registry.RegisterModel(trainer_pb2.RegisterModelRequest(
        name="magnitude-test", source=trainer_pb2.CheckpointRef(job_id=job.job_id), aliases=["staging"])).model_version
    assert version.architecture == "convnetquake_ingv" and version.source.epoch == best.epoch
    assert version.dataset == magnitude_dataset and len(version.dataset_manifest_sha256) == 64
    assert version.input_spec.n_samples == 3000 and version.aliases == ["staging"]
    card = ModelStore(store, metadata).card("magnitude-test", version.version)
    assert card["normalization"] == "none" and 0 < card["p_offset_s"] < 30  # where P sits in training windows
    # the card says what the numbers depend on: seed, versions, device, threads, CPU of the epoch's run
    run = MessageToDict(version.reproducibility)
    assert run == card["reproducibility"] and run["seed"] == 0 and run["device"] == "cpu"
    assert run["libraries"]["torch"] == importlib_metadata.version("torch") and "numpy" in run["libraries"]
    assert run["torch_threads"] >= 1 and run["world_size"] == 1 and run["cpu"] and run["python"]
    by_alias = registry.GetModelVersion(trainer_pb2.GetModelVersionRequest(name="magnitude-test", version="staging"))
    assert by_alias.model_version.version == version.version
    chunks = trainer.DownloadCheckpoint(trainer_pb2.DownloadCheckpointRequest(job_id=job.job_id, epoch=best.epoch))
    state = torch.load(io.BytesIO(b"".join(c.chunk for c in chunks)), weights_only=True)
    model, _, _ = build_model("convnetquake_ingv", {"n_samples": 3000})
    model.load_state_dict(state)
    registered = torch.load(io.BytesIO(store.get_bytes(version.weights_key)), weights_only=True)
    assert all(torch.equal(registered[k], state[k]) for k in state)
    evaluation = trainer.EvaluateModel(trainer_pb2.EvaluateModelRequest(
        registered_model=trainer_pb2.ModelRef(name="magnitude-test", version="staging")), timeout=120)
    assert metric(evaluation.metrics, "rmse") < mean_baseline_rmse
