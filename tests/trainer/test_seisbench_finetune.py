"""Fine-tuning a "pretrained" SeisBench PhaseNet through the trainer, as an observatory would.

No real pretrained weights exist offline, so a SeisBench PhaseNet trained briefly with SeisBench's own pipeline
on network A and saved with `save` stands in for one. It is imported, fine-tuned through the trainer on network
B (slower S waves, three times the noise), and on B's test split it beats both the imported model and a model
trained from scratch for as many epochs (benchmark tasks of Münchmeyer et al. 2022). The fine-tuned version is a
SeisBench model again: exported with `save`, it reopens in plain SeisBench and picks as the inference service
does, and an annotation job picks with it.
"""

from __future__ import annotations

import io
import json

import obspy
import pytest
import seisbench.models as sbm
import torch
from obspy import UTCDateTime

from bench.support.seisbench_loop import fit, plain_phasenet, write_split
from quakestack.cli.app import main
from quakestack.data.network import write_network
from quakestack.data.synthetic import write_continuous
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.v1 import catalog_pb2_grpc, inference_pb2, inference_pb2_grpc, trainer_pb2
from tests.catalog.annotation_helpers import annotation_request, catalog_rows, publish_archive, wait_job
from tests.catalog.annotation_helpers import state as annotation_state
from tests.datasets import publish_synthetic_dataset
from tests.trainer.conftest import hyper, progress, state_name
from tests.trainer.seisbench_helpers import import_model, saved

NETWORK_A = dict(n_events=300, n_noise=40, seed=1, length_s=31.0)
NETWORK_B = dict(n_events=200, n_noise=30, seed=2, length_s=31.0, vs_km_s=3.0, noise_scale=3.0)
FINE_TUNE_HP = dict(epochs=4, learning_rate=0.005, batch_size=32, weight_decay=0.0)


def train(trainer, registry, name: str, dataset: str, initial: str = "", **hp) -> trainer_pb2.ModelVersion:
    hp = {**FINE_TUNE_HP, **hp}
    request = trainer_pb2.CreateTrainingJobRequest(dataset=dataset, hyper_parameters=hyper(**hp),
                                                   architecture="" if initial else "seisbench_phasenet")
    if initial:
        request.initial_model.CopyFrom(trainer_pb2.ModelRef(name=initial))
    job = trainer.CreateTrainingJob(request, timeout=30).job
    events = progress(trainer, job.job_id, timeout_s=600)
    states = [state_name(e.state_change.state) for e in events if e.WhichOneof("event") == "state_change"]
    assert states[-1] == "SUCCEEDED", states
    return registry.RegisterModel(trainer_pb2.RegisterModelRequest(
        name=name, source=trainer_pb2.CheckpointRef(job_id=job.job_id, epoch=hp["epochs"])),
        timeout=60).model_version


def benchmark(trainer, name: str, dataset: str) -> dict[str, float]:
    response = trainer.EvaluateModel(trainer_pb2.EvaluateModelRequest(
        registered_model=trainer_pb2.ModelRef(name=name), dataset=dataset, split="test"), timeout=300)
    names = {k.rsplit("/", 1)[-1] for k in response.artifact_keys}
    assert {"detection_roc.png", "onset_residuals.png"} <= names, names
    return {m.name: m.value for m in response.metrics if not m.values}


@pytest.mark.slow
def test_fine_tuned_seisbench_phasenet_beats_its_start_and_scratch(trainer, registry, store, metadata, stack,
                                                                   dataset_root, inference_channel, data_channel,
                                                                   tmp_path, capsys) -> None:
    publish_synthetic_dataset(store, metadata, "net-a", dataset_root, **NETWORK_A)
    publish_synthetic_dataset(store, metadata, "net-b", dataset_root, **NETWORK_B)
    catalog = DatasetCatalog(metadata)
    pretrained = plain_phasenet(seed=0)
    fit(pretrained, write_split(store, catalog, "net-a", "train", tmp_path / "cache", tmp_path / "sb-a"),
        epochs=8, lr=0.005)
    import_model(registry, "pretrained-pn", "PhaseNet", *saved(pretrained, tmp_path, "pretrained"))

    fine = train(trainer, registry, "finetuned-pn", "net-b", initial="pretrained-pn")
    assert fine.architecture == "seisbench:PhaseNet" and dict(fine.provenance)["initial_model"]["name"] == \
        "pretrained-pn"
    train(trainer, registry, "scratch-pn", "net-b")
    benchmark(trainer, "finetuned-pn", "net-b")
    settings = stack.settings
    capsys.readouterr()  # the CLI's comparison table of the three, as JSON rows
    assert main(["train", "eval", "--model", "pretrained-pn", "--model", "finetuned-pn@1", "--model", "scratch-pn",
                 "--dataset", "net-b", "--json", "--trainer", settings.trainer_addr]) == 0
    scores = {row["model"]: row for row in json.loads(capsys.readouterr().out.strip().splitlines()[-1])}
    tuned, start, scratch = scores["finetuned-pn@1"], scores["pretrained-pn"], scores["scratch-pn"]
    assert tuned["onset_mae_s"] < start["onset_mae_s"] and tuned["onset_mae_s"] < scratch["onset_mae_s"], scores
    assert tuned["detection_mcc"] >= start["detection_mcc"] and tuned["detection_mcc"] > scratch["detection_mcc"], \
        scores

    # exported with SeisBench's own save, it opens in plain SeisBench and picks as the inference service does
    inference = inference_pb2_grpc.InferenceServiceStub(inference_channel)
    assert main(["models", "export", "finetuned-pn@1", "--format", "seisbench", "-o", str(tmp_path / "export"),
                 "--inference", settings.inference_addr]) == 0
    reopened = sbm.PhaseNet.load(tmp_path / "export" / "finetuned-pn").eval()
    inference.LoadModel(inference_pb2.LoadModelRequest(name="finetuned-pn", max_batch_size=64), timeout=60)
    paths, _, _ = write_continuous(str(tmp_path / "cont"), seed=11, duration_s=300, n_events=2,
                                   stations=[("XS", "ALFA", "00", 35.0, -117.0)])
    stream = obspy.read(paths[0])
    mseed = io.BytesIO()
    stream.write(mseed, format="MSEED", encoding="FLOAT32")
    config = inference_pb2.AnnotateConfig(model="finetuned-pn", stride_s=15.01, threshold=0.3)
    responses = inference.Annotate(iter([inference_pb2.AnnotateRequest(config=config),
                                         inference_pb2.AnnotateRequest(mseed=mseed.getvalue())]), timeout=120)
    picks = sorted((p.phase, round(p.time.seconds + p.time.nanos / 1e9, 2)) for r in responses for p in r.picks)
    reference = reopened.classify(stream, overlap=1500, batch_size=64, P_threshold=0.3, S_threshold=0.3)
    expected = [(p.phase, round(p.peak_time.timestamp, 2)) for p in reference.picks]
    assert picks, "the fine-tuned picker finds the events"
    matched = sum(any(p == q and abs(t - u) <= 0.05 for q, u in expected) for p, t in picks)
    assert matched >= 0.9 * max(len(picks), len(expected)), (picks, expected)

    # an annotation job picks with it
    start_time = UTCDateTime(2024, 3, 1, 12)
    network = write_network(str(tmp_path / "network"), seed=2, start=start_time, end=start_time + 600, n_events=1)
    archive = publish_archive(store, network, "archives/seisbench-ft")
    stub = catalog_pb2_grpc.CatalogServiceStub(data_channel)
    job = stub.CreateAnnotationJob(annotation_request(archive, "finetuned-pn"), timeout=60).job
    done = wait_job(stub, job.job_id, lambda j: annotation_state(j) == "SUCCEEDED", timeout_s=300)
    _, stored_picks = catalog_rows(store, done.job_id)
    assert stored_picks, "the annotation job's catalog holds the fine-tuned picker's picks"


@pytest.mark.slow
def test_eqtransformer_fine_tunes_with_a_frozen_encoder(trainer, registry, store, metadata, stack, dataset_root,
                                                         tmp_path) -> None:
    """An imported EQTransformer fine-tunes through the trainer with freeze=encoder: the encoder's weights (and its
    BatchNorm statistics) come out as they went in, the head has learnt, and the version is seisbench:EQTransformer
    again, exported with save and reopened by plain SeisBench."""
    publish_synthetic_dataset(store, metadata, "net-eqt", dataset_root, n_events=40, n_noise=6, seed=8, length_s=31.0)
    torch.manual_seed(0)
    start = sbm.EQTransformer(in_samples=3000, lstm_blocks=1)
    import_model(registry, "eqt-start", "EQTransformer", *saved(start, tmp_path, "eqt"))
    version = train(trainer, registry, "eqt-tuned", "net-eqt", initial="eqt-start", epochs=1, freeze="encoder")
    assert version.architecture == "seisbench:EQTransformer" and version.hyper_parameters["in_samples"] == 3000
    assert main(["models", "export", "eqt-tuned", "--format", "seisbench", "-o", str(tmp_path / "out"),
                 "--inference", stack.settings.inference_addr]) == 0
    tuned = sbm.EQTransformer.load(tmp_path / "out" / "eqt-tuned").state_dict()
    before = start.state_dict()
    encoder = [k for k in before if k.split(".")[0] in ("encoder", "res_cnn_stack", "bi_lstm_stack")]
    assert encoder and all(torch.equal(before[k], tuned[k]) for k in encoder)
    assert not torch.equal(before["conv_d.weight"], tuned["conv_d.weight"])
