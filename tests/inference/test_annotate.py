"""Continuous annotation on the real stack: a trained detector finds known synthetic events."""

from __future__ import annotations

import io
from pathlib import Path

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


# -- the data-quality gate -------------------------------------------------------------------------
Z_ONLY_40HZ = Path(__file__).resolve().parent.parent / "data_files" / "test.mseed"  # ObsPy's NL.HGN.00.BHZ


def _inputs(response) -> dict[str, inference_pb2.StationInput]:
    return {s.station: s for s in response.inputs}


def _annotate_stream(inference, stream: obspy.Stream, **config) -> list[inference_pb2.AnnotateResponse]:
    return list(inference.Annotate(iter([_config(**config), inference_pb2.AnnotateRequest(mseed=_mseed(stream))]),
                                   timeout=120))


def _one_station(continuous, seconds: float) -> obspy.Stream:
    stream, _ = continuous
    station = stream[0].id.rsplit(".", 1)[0]
    picked = obspy.Stream([tr.copy() for tr in stream if tr.id.startswith(station + ".")])
    t0 = picked[0].stats.starttime
    return picked.trim(t0, t0 + seconds - 0.005)  # seconds * 100 samples


def test_a_z_only_station_is_refused_for_a_zne_model_and_never_zero_filled(inference, detector, continuous) -> None:
    """ObsPy's Z-only 40 Hz record beside a three-component station: N and E were once zeros and the
    detector reported an "event" spanning the record; now the station is refused and says why."""
    zne = _one_station(continuous, 300.0)
    responses = list(inference.Annotate(iter([_config(model=detector), inference_pb2.AnnotateRequest(mseed=_mseed(zne)),
                                              inference_pb2.AnnotateRequest(mseed=Z_ONLY_40HZ.read_bytes())]),
                                        timeout=120))
    last = responses[-1]
    inputs = _inputs(last)
    assert inputs["NL.HGN.00"].outcome == "refused" and inputs["NL.HGN.00"].components == "Z"
    assert "has components Z of the model's ZNE" in inputs["NL.HGN.00"].refused
    assert inputs[zne[0].id.rsplit(".", 1)[0]].outcome == "used"
    assert not [d for r in responses for d in r.detections if d.station == "NL.HGN.00"]
    assert any(w.startswith("refused NL.HGN.00: has components Z") for w in last.warnings), last.warnings
    # allowed explicitly (a model trained with channel dropout): filled, resampled and both said
    lenient = list(inference.Annotate(iter([
        _config(model=detector, input_policy=inference_pb2.InputPolicy(missing_components="zeros")),
        inference_pb2.AnnotateRequest(mseed=Z_ONLY_40HZ.read_bytes())]), timeout=120))[-1]
    hgn = _inputs(lenient)["NL.HGN.00"]
    assert (hgn.outcome, hgn.zero_components, hgn.resampled_from_hz) == ("gap-filled", "NE", 40.0)
    assert any("components NE missing, filled with zeros" in w and "resampled from 40 Hz" in w
               for w in lenient.warnings), lenient.warnings


def test_a_record_shorter_than_the_window_is_refused_with_both_lengths(inference, detector, continuous) -> None:
    short = _one_station(continuous, 9.99)  # 999 samples; the detector reads 1000
    last = _annotate_stream(inference, short, model=detector)[-1]
    (report,) = last.inputs
    assert report.outcome == "refused" and not last.detections
    assert "999 samples (9.99 s) at 100 Hz, shorter than the model's window of 1000 samples (10 s)" in report.refused


def test_upsampling_beyond_the_limit_is_refused_and_the_limit_is_a_setting(inference, detector, continuous,
                                                                          store, tmp_path) -> None:
    slow = _one_station(continuous, 120.0)
    for tr in slow:
        tr.decimate(5, no_filter=True)  # 20 Hz: 5x below the model's 100 Hz
    path = tmp_path / "slow.mseed"
    slow.write(str(path), format="MSEED", encoding="FLOAT32")
    store.put_file("raw/annotate-test/slow.mseed", path)
    request = inference_pb2.AnnotateFileRequest(model=detector,
                                                file=common_pb2.Location(object_key="raw/annotate-test/slow.mseed"))
    (report,) = inference.AnnotateFile(request, timeout=120).inputs
    assert report.outcome == "refused" and "sampled at 20 Hz; the model's 100 Hz would upsample it 5x" in report.refused
    request.input_policy.max_upsampling = 5.0
    (report,) = inference.AnnotateFile(request, timeout=120).inputs
    assert (report.outcome, report.resampled_from_hz) == ("resampled", 20.0)
    request.input_policy.max_upsampling = 0.5
    with pytest.raises(grpc.RpcError) as info:
        inference.AnnotateFile(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input_policy.max_upsampling must be >= 1" in info.value.details()


def test_gaps_are_filled_with_zeros_and_counted_in_files_streams_and_chunks(inference, detector, continuous) -> None:
    whole = _one_station(continuous, 120.0)
    t0 = whole[0].stats.starttime
    gapped = whole.copy().trim(t0, t0 + 40 - 0.005) + whole.copy().trim(t0 + 50, t0 + 120 - 0.005)  # 10 s out
    last = _annotate_stream(inference, gapped, model=detector)[-1]
    (report,) = last.inputs
    assert (report.outcome, report.gap_filled_samples) == ("gap-filled", 3 * 1000)  # 10 s on each component
    assert any("3000 samples gap-filled with zeros" in w for w in last.warnings), last.warnings
    pieces = [chunk for i, _ in enumerate(gapped) for chunk in _chunks(gapped[i:i + 1], np.random.default_rng(i))]
    chunked = [_config(model=detector), *sorted(pieces, key=lambda r: _seconds(r.chunk.start_time))]
    (report,) = list(inference.Annotate(iter(chunked), timeout=120))[-1].inputs
    assert (report.outcome, report.gap_filled_samples) == ("gap-filled", 3 * 1000)
    nan = whole.copy()
    nan[0].data = nan[0].data.astype(np.float32)
    nan[0].data[100:150] = np.nan
    (report,) = list(inference.Annotate(iter([_config(model=detector), *_chunks(nan, np.random.default_rng(6))]),
                                        timeout=120))[-1].inputs
    assert report.gap_filled_samples == 50
