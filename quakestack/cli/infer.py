"""`quakestack predict` and `quakestack annotate`: waveforms from files to a loaded model, results as tables."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from quakestack.cli.common import CliError, Ctx, duration, fmt, table, to_dict
from quakestack.cli.models import inference, loaded_model
from quakestack.cli.progress import ProgressBar
from quakestack.protoconv import iso_from_seconds, seconds_from_timestamp, timestamp_from_seconds
from quakestack.v1 import common_pb2, inference_pb2

CHUNK_S = 600.0  # seconds of one channel per Annotate message
PREDICT_BATCH = 256


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-4]


def read_waveforms(paths: Sequence[str | Path]):
    """Any ObsPy-readable files as one Stream (merged, gaps zero-filled)."""
    import obspy

    stream = obspy.Stream()
    for path in paths:
        if not Path(path).exists():
            raise CliError(f"{path}: no such file")
        stream += obspy.read(str(path))
    stream.merge(fill_value=0)
    return stream


def resample_to(ctx: Ctx, stream, rate: float) -> None:
    """Traces at another rate are resampled (in place) to the model's, and the user is told which."""
    changed: dict[float, list[str]] = {}
    for tr in stream:
        if abs(tr.stats.sampling_rate - rate) > 1e-6 * rate:
            changed.setdefault(float(tr.stats.sampling_rate), []).append(tr.id)
            tr.data = tr.data.astype(np.float64)
            tr.resample(rate)
    for old, ids in sorted(changed.items()):
        ctx.note(f"resampled {', '.join(ids)} from {old:g} Hz to the model's {rate:g} Hz")


# -- predict -----------------------------------------------------------------------------------
@dataclass
class Windows:
    """Windows cut for a model, with where each came from."""

    x: np.ndarray  # (N, C, L) float32
    stations: list[str]
    starts: list[float]  # POSIX seconds; nan for .npy input


def cut_windows(stream, n_samples: int, rate: float, components: str, stride_s: float = 0.0) -> Windows:
    """Per station (NET.STA.LOC), resample to the model's rate, order components, cut windows.

    Component letters match on the channel code's last letter (1/2 stand in for N/E).
    """
    aliases = {"N": "N1", "E": "E2", "Z": "Z3"}
    stride = int(round((stride_s or n_samples / rate) * rate))
    xs, stations, starts = [], [], []
    by_station: dict[str, list] = {}
    for tr in stream:
        by_station.setdefault(tr.id.rsplit(".", 1)[0], []).append(tr)
    for station, traces in sorted(by_station.items()):
        traces = [t.copy() for t in traces]
        for t in traces:
            if abs(t.stats.sampling_rate - rate) > 1e-6:
                t.resample(rate)
        picked = []
        for comp in components:
            match = [t for t in traces if t.stats.channel[-1:] in aliases.get(comp, comp)]
            if not match:
                break
            picked.append(match[0])
        if len(picked) != len(components):
            continue
        t0 = max(t.stats.starttime for t in picked)
        n = min(len(t.data) - int(round((t0 - t.stats.starttime) * rate)) for t in picked)
        data = np.stack([t.data[int(round((t0 - t.stats.starttime) * rate)):][:n] for t in picked]).astype(np.float32)
        for s in range(0, n - n_samples + 1, stride):
            xs.append(data[:, s:s + n_samples])
            stations.append(station)
            starts.append(float(t0.timestamp) + s / rate)
    if not xs:
        raise CliError(f"no station has {n_samples} samples of components {components}")
    return Windows(np.stack(xs), stations, starts)


def windows_from_npy(path: Path, n_samples: int) -> Windows:
    x = np.load(path).astype(np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise CliError(f"{path}: expected an array (windows, components, samples), got shape {x.shape}")
    return Windows(x, [""] * len(x), [float("nan")] * len(x))


def predict(ctx: Ctx, model: str, path: str | Path, stride_s: float = 0.0) -> list[dict]:
    """Windows cut to the model's input spec (or an .npy of windows) → Predict in batches → a table."""
    spec_model = loaded_model(ctx, model)
    if spec_model is None:
        raise CliError(f"model {model!r} is not loaded (quakestack models load {model})")
    spec = spec_model.input_spec
    path = Path(path)
    if path.suffix == ".npy":
        windows = windows_from_npy(path, spec.n_samples)
    else:
        stream = read_waveforms([path])
        resample_to(ctx, stream, spec.sampling_rate_hz)
        windows = cut_windows(stream, spec.n_samples, spec.sampling_rate_hz, spec.component_order, stride_s)
    rows: list[dict] = []
    class_names: list[str] = []
    for a in range(0, len(windows.x), PREDICT_BATCH):
        batch = np.ascontiguousarray(windows.x[a:a + PREDICT_BATCH], dtype="<f4")
        request = inference_pb2.PredictRequest(model=model, windows=common_pb2.Waveforms(
            data=batch.tobytes(), shape=list(batch.shape), sampling_rate_hz=spec.sampling_rate_hz,
            component_order=spec.component_order))
        response = inference(ctx).Predict(request, timeout=300)
        class_names = list(response.class_names)
        for i, p in enumerate(response.predictions):
            row = {"station": windows.stations[a + i], "start": windows.starts[a + i], **to_dict(p)}
            rows.append(row)
    for row in rows:
        start = row["start"]
        when = {} if np.isnan(start) else {"startTime": iso_from_seconds(start, "microseconds")}
        ctx.emit({"station": row["station"], **when,
                  **{k: v for k, v in row.items() if k not in ("station", "start")}})
    headers = ["#", "station", "start", "magnitude", "std", "p(event)", "class"]
    out = []
    for i, row in enumerate(rows):
        probs = row.get("classProbabilities") or []
        label = class_names[int(np.argmax(probs))] if probs and class_names else ""
        start = "" if np.isnan(row["start"]) else iso(row["start"])
        out.append((i, row["station"], start, fmt(row.get("magnitude"), 2), fmt(row.get("magnitudeStd"), 2),
                    fmt(row.get("detectionProbability"), 3), label))
    ctx.say(table(out, headers))
    return rows


# -- annotate ----------------------------------------------------------------------------------
def _chunks(stream, chunk_s: float, bar: ProgressBar) -> Iterator[inference_pb2.AnnotateRequest]:
    """Every channel in time order, chunk by chunk, channels interleaved — as a live feed would arrive."""
    total = sum(tr.stats.npts for tr in stream)
    sent = 0
    t_first = min(tr.stats.starttime for tr in stream)
    t_last = max(tr.stats.endtime for tr in stream)
    t = t_first
    while t <= t_last:
        for tr in stream:
            rate = tr.stats.sampling_rate
            a = max(0, int(round((t - tr.stats.starttime) * rate)))
            b = min(tr.stats.npts, int(round((t + chunk_s - tr.stats.starttime) * rate)))
            if b <= a:
                continue
            start = timestamp_from_seconds(tr.stats.starttime.timestamp + a / rate)
            sent += b - a
            done_s = min(t + chunk_s - t_first, t_last - t_first)
            bar.update(sent, total, f"{duration(done_s)} of {duration(t_last - t_first)}")
            yield inference_pb2.AnnotateRequest(chunk=inference_pb2.ChannelChunk(
                seed_id=tr.id, start_time=start, sampling_rate_hz=rate, data=tr.data[a:b].astype("<f4").tobytes()))
        t += chunk_s


def detection_dict(d: inference_pb2.Detection) -> dict:
    return {"station": d.station, "start": seconds_from_timestamp(d.start_time),
            "end": seconds_from_timestamp(d.end_time),
            "peak": seconds_from_timestamp(d.peak_time), "probability": d.probability,
            "magnitude": d.magnitude if d.HasField("magnitude") else None, "class_label": d.class_label}


def annotate(ctx: Ctx, model: str, paths: Sequence[str | Path], *, magnitude_model: str = "",
             stride_s: float | None = None, threshold: float | None = None, object_key: str = "") -> list[dict]:
    """Stream files to InferenceService.Annotate (or AnnotateFile for an object key); a table of detections."""
    if threshold is not None and not 0 < threshold <= 1:
        raise CliError(f"--threshold must be in (0, 1], got {threshold:g} (omit it for the default: 0.5 for "
                       "detections, 0.3 for picks)")
    if stride_s is not None and stride_s <= 0:
        raise CliError(f"--stride-s must be > 0, got {stride_s:g} (omit it for half the model's window)")
    config = dict(model=model, stride_s=stride_s or 0.0, magnitude_model=magnitude_model,
                  **({} if threshold is None else {"threshold": threshold}))
    found: list[dict] = []
    picks: list[dict] = []
    if object_key:
        response = inference(ctx).AnnotateFile(inference_pb2.AnnotateFileRequest(
            file=common_pb2.Location(object_key=object_key), **config), timeout=1800)
        for warning in response.warnings:
            ctx.note(warning)
        responses = [response]
    else:
        if not paths:
            raise CliError("give waveform files to annotate (or --key for an object in the bucket)")
        stream = read_waveforms(paths)
        spec = loaded_model(ctx, model)
        if spec is None:
            raise CliError(f"model {model!r} is not loaded (quakestack models load {model})")
        resample_to(ctx, stream, spec.input_spec.sampling_rate_hz)
        bar = ProgressBar("annotate", ctx.stderr, enabled=not ctx.quiet and not ctx.as_json)
        requests = [inference_pb2.AnnotateRequest(config=inference_pb2.AnnotateConfig(**config))]

        def feed() -> Iterator[inference_pb2.AnnotateRequest]:
            yield from requests
            yield from _chunks(stream, CHUNK_S, bar)

        responses = inference(ctx).Annotate(feed(), timeout=1800)
    try:
        for response in responses:
            for d in response.detections:
                ctx.emit(to_dict(d))
                found.append(detection_dict(d))
            for p in response.picks:
                ctx.emit(to_dict(p))
                picks.append({"station": p.station, "phase": p.phase, "time": seconds_from_timestamp(p.time),
                              "probability": p.probability})
    finally:
        if not object_key:
            bar.close()
    found.sort(key=lambda r: (r["peak"], r["station"]))
    rows = [(r["station"], iso(r["start"]), iso(r["peak"]), f"{r['end'] - r['start']:.1f}", fmt(r["probability"], 2),
             fmt(r["magnitude"], 2), r["class_label"]) for r in found]
    ctx.say(table(rows, ("station", "start", "peak", "dur s", "prob", "mag", "class")))
    if picks:
        ctx.say(table([(p["station"], p["phase"], iso(p["time"]), fmt(p["probability"], 2)) for p in picks],
                      ("station", "phase", "time", "prob")))
    ctx.say(f"{len(found)} detections" + (f", {len(picks)} picks" if picks else ""))
    return found


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("predict", parents=[common], help="predict on windows cut from a waveform file (or .npy)")
    p.add_argument("model", help="loaded model name")
    p.add_argument("file", help="miniSEED (any ObsPy format) or .npy of windows (N, C, L)")
    p.add_argument("--stride-s", type=float, default=0.0, help="seconds between windows (default: window length)")
    p.set_defaults(func=lambda ctx, a: predict(ctx, a.model, a.file, a.stride_s))
    p = sub.add_parser("annotate", parents=[common], help="detect events in continuous data")
    p.add_argument("model", help="loaded detector (or classifier / picker)")
    p.add_argument("files", nargs="*", help="miniSEED files (any ObsPy format)")
    p.add_argument("--magnitude-model", default="", help="loaded magnitude model run on each detection")
    p.add_argument("--stride-s", type=float, default=None, help="seconds between windows (default: half the window)")
    p.add_argument("--threshold", type=float, default=None, help="in (0, 1]; default 0.5 (detections), 0.3 (picks)")
    p.add_argument("--key", default="", help="annotate an object in the bucket with AnnotateFile instead")
    p.set_defaults(func=lambda ctx, a: annotate(ctx, a.model, a.files, magnitude_model=a.magnitude_model,
                                                stride_s=a.stride_s, threshold=a.threshold, object_key=a.key))
