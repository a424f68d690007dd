"""A SeisBench picker served from a local state_dict: its picks come back through Annotate."""

from __future__ import annotations

import io

import obspy
import seisbench.models as sbm
import torch

from quakestack.data.synthetic import write_continuous
from quakestack.v1 import inference_pb2


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
