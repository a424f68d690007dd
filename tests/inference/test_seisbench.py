"""A SeisBench picker served from a local state_dict: its picks come back through Annotate."""

from __future__ import annotations

import io

import grpc
import obspy
import pytest
import seisbench.models as sbm
import torch

from quakestack.data.synthetic import write_continuous
from quakestack.v1 import inference_pb2, trainer_pb2, trainer_pb2_grpc


def test_phasenet_picks_match_seisbench(registry, inference, tmp_path) -> None:
    torch.manual_seed(0)
    model = sbm.PhaseNet().eval()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    card = {"architecture": "seisbench:PhaseNet", "task": "picking", "hyper_parameters": {},
            "input_spec": {"n_samples": 3001, "components": "ZNE", "sampling_rate": 100.0, "extra_inputs": []},
            "class_names": [], "normalization": "none", "metrics": {}}
    registry.register("phasenet", buf.getvalue(), card)
    loaded = inference.LoadModel(inference_pb2.LoadModelRequest(name="phasenet", max_batch_size=64), timeout=60)
    assert loaded.model.task == 4 and loaded.model.input_spec.n_samples == 3001  # TASK_PICKING

    paths, _, _ = write_continuous(str(tmp_path), seed=11, duration_s=300, n_events=1,
                                   stations=[("XS", "ALFA", "00", 35.0, -117.0)])
    stream = obspy.read(paths[0])
    out = io.BytesIO()
    stream.write(out, format="MSEED", encoding="FLOAT32")
    config = inference_pb2.AnnotateConfig(model="phasenet", stride_s=15.01, threshold=0.34)
    responses = inference.Annotate(iter([inference_pb2.AnnotateRequest(config=config),
                                         inference_pb2.AnnotateRequest(mseed=out.getvalue())]), timeout=120)
    picks = sorted((p.phase, round(p.time.seconds + p.time.nanos / 1e9, 2)) for r in responses for p in r.picks)

    # SeisBench's own picks of the same weights: stacked P/S probabilities, trigger on at the threshold,
    # off at half of it (picks_from_annotations)
    reference = model.classify(stream, overlap=1500, batch_size=64, P_threshold=0.34, S_threshold=0.34)
    expected = [(p.phase, round(p.peak_time.timestamp, 2)) for p in reference.picks]
    assert picks and {p for p, _ in picks} <= {"P", "S"}
    matched = sum(any(p == q and abs(t - u) <= 0.05 for q, u in expected) for p, t in picks)
    assert matched >= 0.9 * max(len(picks), len(expected)), (picks, sorted(expected))


def test_an_imported_model_without_a_training_job_is_listed_and_refused_for_evaluation(registry,
                                                                                       trainer_channel) -> None:
    """A SeisBench model registered as-is has no source checkpoint and no dataset: the registry still lists it
    (one such card once made ListModels fail for every model with UNKNOWN) and evaluation asks for a dataset."""
    buf = io.BytesIO()
    torch.save(sbm.PhaseNet().state_dict(), buf)
    card = {"architecture": "seisbench:PhaseNet", "task": "picking", "hyper_parameters": {},
            "input_spec": {"n_samples": 3001, "components": "ZNE", "sampling_rate": 100.0, "extra_inputs": []},
            "class_names": [], "normalization": "none", "metrics": {}}
    registry.register("imported-phasenet", buf.getvalue(), card)
    trainer = trainer_pb2_grpc.TrainerServiceStub(trainer_channel)
    models = trainer_pb2_grpc.ModelRegistryServiceStub(trainer_channel)
    names = []
    request = trainer_pb2.ListModelsRequest(page_size=50)
    while True:
        page = models.ListModels(request, timeout=30)
        names += [m.name for m in page.models]
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert "imported-phasenet" in names
    got = models.GetModel(trainer_pb2.GetModelRequest(name="imported-phasenet"), timeout=30).model
    assert got.versions[0].source.job_id == "" and got.versions[0].architecture == "seisbench:PhaseNet"
    with pytest.raises(grpc.RpcError) as err:
        trainer.EvaluateModel(trainer_pb2.EvaluateModelRequest(
            registered_model=trainer_pb2.ModelRef(name="imported-phasenet", version="1")), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "dataset" in err.value.details()
