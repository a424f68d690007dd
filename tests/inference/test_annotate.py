"""Continuous annotation on the real stack: a trained detector finds known synthetic events."""

from __future__ import annotations

import io

import grpc
import numpy as np
import obspy
import pytest
import torch

from quakestack.data.synthetic import write_continuous
from quakestack.v1 import common_pb2, inference_pb2
from tests.inference.detector import HPARAMS, p_arrivals, train_detector
from tests.inference.helpers import TINY_MAGNITUDE, register

TOLERANCE_S = 2.0


@pytest.fixture(scope="module")
def detector(registry, inference, tmp_path_factory) -> str:
    weights = train_detector(str(tmp_path_factory.mktemp("train")))
    from quakestack.models.zoo import build_model

    model, _, _ = build_model("convnetquake", HPARAMS)
    model.load_state_dict(torch.load(io.BytesIO(weights), weights_only=True))
    register(registry, "detector", "convnetquake", HPARAMS, model=model)
    register(registry, "onset-mag", "convnetquake_ingv", TINY_MAGNITUDE, p_offset_s=2.0)
    for name in ("detector", "onset-mag"):
        inference.LoadModel(inference_pb2.LoadModelRequest(name=name, max_batch_size=64), timeout=60)
    return "detector"


@pytest.fixture(scope="module")
def continuous(tmp_path_factory) -> tuple[obspy.Stream, dict[str, list[float]]]:
    paths, _, truth = write_continuous(str(tmp_path_factory.mktemp("continuous")), seed=7, duration_s=1800,
                                       n_events=6)
    stream = obspy.Stream()
    for path in paths:
        stream += obspy.read(path)
    return stream, p_arrivals(truth)


def _config(**kw) -> inference_pb2.AnnotateRequest:
    return inference_pb2.AnnotateRequest(config=inference_pb2.AnnotateConfig(**kw))


def _chunks(stream: obspy.Stream, rng: np.random.Generator):
    """Every channel cut in random sizes, channels interleaved — as a live feed would arrive."""
    cursors = {tr.id: 0 for tr in stream}
    traces = {tr.id: tr for tr in stream}
    while cursors:
        seed_id = list(cursors)[int(rng.integers(len(cursors)))]
        tr, a = traces[seed_id], cursors[seed_id]
        b = min(tr.stats.npts, a + int(rng.integers(50, 20_000)))
        start = common_pb2.google_dot_protobuf_dot_timestamp__pb2.Timestamp()
        start.FromNanoseconds(int(round((tr.stats.starttime.timestamp + a / tr.stats.sampling_rate) * 1e9)))
        yield inference_pb2.AnnotateRequest(chunk=inference_pb2.ChannelChunk(
            seed_id=seed_id, start_time=start, sampling_rate_hz=tr.stats.sampling_rate,
            data=tr.data[a:b].astype("<f4").tobytes()))
        if b >= tr.stats.npts:
            del cursors[seed_id]
        else:
            cursors[seed_id] = b


def _mseed(stream: obspy.Stream) -> bytes:
    buf = io.BytesIO()
    stream.write(buf, format="MSEED", encoding="FLOAT32")
    return buf.getvalue()


def _seconds(ts) -> float:
    return ts.seconds + ts.nanos / 1e9


def _detections(responses) -> list[tuple]:
    return sorted((d.station, _seconds(d.start_time), _seconds(d.end_time), _seconds(d.peak_time), d.probability,
                   d.magnitude if d.HasField("magnitude") else None)
                  for r in responses for d in r.detections)


def test_annotate_finds_known_events(inference, detector, continuous) -> None:
    stream, arrivals = continuous
    requests = [_config(model=detector, stride_s=1.0), inference_pb2.AnnotateRequest(mseed=_mseed(stream))]
    found = _detections(inference.Annotate(iter(requests), timeout=120))
    matched = 0
    for station, times in arrivals.items():
        for p in times:
            hits = [d for d in found if d[0] == station and d[1] - TOLERANCE_S <= p <= d[2] + TOLERANCE_S
                    and abs(d[3] - p) <= TOLERANCE_S]
            matched += bool(hits)
    total = sum(len(v) for v in arrivals.values())
    assert matched / total >= 0.9, (matched, total, found)
    assert len(found) <= total * 1.2  # few false detections


def test_chunked_and_whole_input_give_identical_detections(inference, detector, continuous) -> None:
    stream, _ = continuous
    stream = stream.slice(stream[0].stats.starttime, stream[0].stats.starttime + 600)
    whole = [_config(model=detector, stride_s=0.5, magnitude_model="onset-mag"),
             inference_pb2.AnnotateRequest(mseed=_mseed(stream))]
    chunked = [_config(model=detector, stride_s=0.5, magnitude_model="onset-mag"),
               *_chunks(stream, np.random.default_rng(3))]
    responses = list(inference.Annotate(iter(chunked), timeout=120))
    a, b = _detections(inference.Annotate(iter(whole), timeout=120)), _detections(responses)
    assert a and len(responses) > 1  # results streamed back as they became final, not all at the end
    assert [d[:4] for d in a] == [d[:4] for d in b]
    np.testing.assert_allclose([d[4:] for d in a], [d[4:] for d in b], rtol=1e-4, atol=1e-5)
    assert all(d[5] is not None for d in a)  # the magnitude model ran on every detection


def test_annotate_file_from_the_bucket(store, inference, detector, continuous, tmp_path) -> None:
    stream, arrivals = continuous
    path = tmp_path / "day.mseed"
    stream.write(str(path), format="MSEED", encoding="FLOAT32")
    store.put_file("raw/annotate-test/day.mseed", path)
    response = inference.AnnotateFile(inference_pb2.AnnotateFileRequest(
        model=detector, file=common_pb2.Location(object_key="raw/annotate-test/day.mseed"), stride_s=1.0),
        timeout=120)
    streamed = _detections(inference.Annotate(iter([_config(model=detector, stride_s=1.0),
                                                    inference_pb2.AnnotateRequest(mseed=_mseed(stream))]),
                                              timeout=120))
    assert [d[:4] for d in _detections([response])] == [d[:4] for d in streamed]
    denied = inference_pb2.AnnotateFileRequest(model=detector, file=common_pb2.Location(local_path=str(path)))
    with pytest.raises(grpc.RpcError) as info:
        inference.AnnotateFile(denied, timeout=30)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_annotate_errors(inference, detector) -> None:
    with pytest.raises(grpc.RpcError) as info:
        list(inference.Annotate(iter([inference_pb2.AnnotateRequest(mseed=b"x")]), timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad_rate = inference_pb2.AnnotateRequest(chunk=inference_pb2.ChannelChunk(
        seed_id="XS.ALFA.00.HHZ", sampling_rate_hz=50.0, data=b"\0" * 400))
    with pytest.raises(grpc.RpcError) as info:
        list(inference.Annotate(iter([_config(model=detector), bad_rate]), timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "100" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        list(inference.Annotate(iter([_config(model="onset-mag")]), timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
