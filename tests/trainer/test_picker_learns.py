"""The zoo's PhaseNet-style picker trains through the trainer service, learns, and picks through Annotate."""

from __future__ import annotations

import io

import obspy

from quakestack.data.synthetic import write_continuous
from quakestack.v1 import inference_pb2, inference_pb2_grpc, trainer_pb2
from tests.datasets import publish_synthetic_dataset
from tests.trainer.conftest import create_job, epochs_of, metric, progress, state_name

PICKER_HP = {"n_samples": 2000, "base_channels": 8, "depth": 4, "learning_rate": 0.002, "batch_size": 16}


def test_picker_learns_through_the_service_and_serves_picks(trainer, registry, store, metadata, dataset_root,
                                                             inference_channel, tmp_path) -> None:
    # STEAD-style windows: P between 3 and 15 s, S after it; 20 s windows
    publish_synthetic_dataset(store, metadata, "syn-picks", dataset_root, n_events=500, n_noise=40, seed=3,
                              length_s=20.0)
    job = create_job(trainer, "syn-picks", architecture="phasenet", epochs=20, **PICKER_HP)
    events = progress(trainer, job.job_id, timeout_s=600)
    states = [state_name(e.state_change.state) for e in events if e.WhichOneof("event") == "state_change"]
    assert states[-1] == "SUCCEEDED", states
    assert epochs_of(events) == list(range(1, 21))
    epochs = [e.epoch for e in events if e.WhichOneof("event") == "epoch"]
    first, best = epochs[0], min(epochs, key=lambda e: e.val_loss)
    assert best.val_loss < 0.5 * first.val_loss
    assert metric(best.metrics, "p_recall") >= 0.8 and metric(best.metrics, "p_precision") >= 0.8, best.metrics
    assert abs(metric(best.metrics, "p_residual_mean")) <= 10  # samples (0.1 s)

    evaluation = trainer.EvaluateModel(trainer_pb2.EvaluateModelRequest(
        checkpoint=trainer_pb2.CheckpointRef(job_id=job.job_id), split="test"), timeout=120)
    assert metric(evaluation.metrics, "p_recall") >= 0.7
    assert [k.rsplit("/", 1)[-1] for k in evaluation.artifact_keys] == ["detection_roc.png", "onset_residuals.png",
                                                                        "pick_residuals.png"]
    # the benchmark tasks of Münchmeyer et al. (2022), as for every picker
    assert metric(evaluation.metrics, "detection_auc") >= 0.9 and metric(evaluation.metrics, "phase_mcc") >= 0.5
    assert metric(evaluation.metrics, "p_onset_mae_s") <= 0.5

    version = registry.RegisterModel(trainer_pb2.RegisterModelRequest(
        name="picker-test", source=trainer_pb2.CheckpointRef(job_id=job.job_id))).model_version
    assert version.architecture == "phasenet"
    inference = inference_pb2_grpc.InferenceServiceStub(inference_channel)
    loaded = inference.LoadModel(inference_pb2.LoadModelRequest(name="picker-test", max_batch_size=64), timeout=60)
    assert loaded.model.task == 4  # TASK_PICKING

    paths, _, truth = write_continuous(str(tmp_path), seed=21, duration_s=600, n_events=3,
                                       stations=[("XS", "ALFA", "00", 35.0, -117.0)])
    out = io.BytesIO()
    obspy.read(paths[0]).write(out, format="MSEED", encoding="FLOAT32")
    config = inference_pb2.AnnotateConfig(model="picker-test")
    responses = inference.Annotate(iter([inference_pb2.AnnotateRequest(config=config),
                                         inference_pb2.AnnotateRequest(mseed=out.getvalue())]), timeout=120)
    picks = [(p.phase, p.time.seconds + p.time.nanos / 1e9) for r in responses for p in r.picks]
    true_p = [pk["time"].timestamp for ev in truth for pk in ev["picks"] if pk["phase"] == "P"]
    found = sum(any(ph == "P" and abs(t - u) <= 0.5 for ph, t in picks) for u in true_p)
    assert found == len(true_p), (picks, true_p)
