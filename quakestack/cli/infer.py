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
from quakestack.errors import InvalidArgument
from quakestack.inference.quality import (
    DEFAULT_MAX_UPSAMPLING,
    MISSING_COMPONENT_POLICIES,
    InputLedger,
    InputPolicy,
    component_index,
    gate_stream,
    judge_station,
)
from quakestack.protoconv import iso_from_seconds, seconds_from_timestamp, timestamp_from_seconds
from quakestack.v1 import common_pb2, inference_pb2

CHUNK_S = 600.0  # seconds of one channel per Annotate message
PREDICT_BATCH = 256


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-4]


def read_waveforms(paths: Sequence[str | Path]):
    """Any ObsPy-readable files as one Stream, traces as they are (the quality gate merges and counts gaps)."""
    import obspy

    stream = obspy.Stream()
    for path in paths:
        if not Path(path).exists():
            raise CliError(f"{path}: no such file")
        stream += obspy.read(str(path))
    return stream


def gated(ctx: Ctx, stream, rate: float, components: str, policy: InputPolicy):
    """The stream through the data-quality gate that the services use (resampled within the policy's limit,
    gaps zero-filled and counted, over-upsampled stations refused), each change told to the user."""
    ledger = InputLedger(rate)
    out = gate_stream(stream, rate, components, policy, ledger)
    for line in ledger.notes():
        ctx.note(line)
    return out


def policy_arguments(parser: argparse.ArgumentParser) -> None:
    """The gate's settings as flags, defaults shown (InputPolicy in the API)."""
    parser.add_argument("--max-upsampling", type=float, default=DEFAULT_MAX_UPSAMPLING,
                        help="refuse a station that would be upsampled by more than this factor to the model's rate "
                             "(default %(default)g: 40 Hz to 100 Hz passes, 20 Hz does not)")
    parser.add_argument("--missing-components", choices=MISSING_COMPONENT_POLICIES, default="refuse",
                        help="a station without a component the model reads: refuse it (default) or fill it with "
                             "zeros (only for a model trained with channel dropout)")


def policy_of(args: argparse.Namespace) -> InputPolicy:
    try:
        return InputPolicy(args.max_upsampling, args.missing_components)
    except InvalidArgument as exc:
        raise CliError(str(exc).replace("input_policy.max_upsampling", "--max-upsampling")) from None


# -- predict -----------------------------------------------------------------------------------
@dataclass
class Windows:
    """Windows cut for a model, with where each came from."""

    x: np.ndarray  # (N, C, L) float32
    stations: list[str]
    starts: list[float]  # POSIX seconds; nan for .npy input


def cut_windows(ctx: Ctx, stream, n_samples: int, rate: float, components: str, stride_s: float = 0.0,
                policy: InputPolicy = InputPolicy()) -> Windows:
    """Per station (NET.STA.LOC), through the quality gate, components in the model's order, windows every
    ``stride_s`` and one more aligned to the record's end, so its last seconds are never dropped (as
    SeisBench's annotate does). Refused stations are told with why, never skipped without a word."""
    stream = gated(ctx, stream, rate, components, policy)
    ledger = InputLedger(rate)
    stride = max(1, int(round((stride_s or n_samples / rate) * rate)))
    xs, stations, starts = [], [], []
    by_station: dict[str, dict[int, object]] = {}
    for tr in stream:
        comp = component_index(tr.stats.channel[-1:], components)
        if comp is not None:
            by_station.setdefault(tr.id.rsplit(".", 1)[0], {}).setdefault(comp, tr)
    for station, traces in sorted(by_station.items()):
        report = ledger.station(station)
        t0 = min(tr.stats.starttime for tr in traces.values())
        offsets = {c: int(round((tr.stats.starttime - t0) * rate)) for c, tr in traces.items()}
        n = max(offsets[c] + tr.stats.npts for c, tr in traces.items())
        found = "".join(components[c] for c in sorted(traces))
        used = judge_station(report, found, components, n, n_samples, rate, policy)
        if line := report.note(rate):  # refused (why), or components filled with zeros by the policy
            ctx.note(line)
        if not used:
            continue
        data = np.zeros((len(components), n), np.float32)
        for c, tr in traces.items():
            data[c, offsets[c]:offsets[c] + tr.stats.npts] = tr.data
        filled = sum(n - tr.stats.npts for tr in traces.values())
        if filled:
            ctx.note(f"{station}: {filled} samples zero-filled where its components do not overlap")
        cut = list(range(0, n - n_samples + 1, stride))
        if cut[-1] + n_samples < n:
            cut.append(n - n_samples)
            ctx.note(f"{station}: the last window is aligned to the record's end "
                     f"({(n - cut[-2] - n_samples) / rate:g} s after the last regular window)")
        for s in cut:
            xs.append(data[:, s:s + n_samples])
            stations.append(station)
            starts.append(float(t0.timestamp) + s / rate)
    if not xs:
        raise CliError(f"no station has {n_samples} samples of components {components} (see the notes above)")
    return Windows(np.stack(xs), stations, starts)


def windows_from_npy(path: Path, n_samples: int) -> Windows:
    x = np.load(path).astype(np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise CliError(f"{path}: expected an array (windows, components, samples), got shape {x.shape}")
    return Windows(x, [""] * len(x), [float("nan")] * len(x))


def predict(ctx: Ctx, model: str, path: str | Path, stride_s: float = 0.0,
            policy: InputPolicy = InputPolicy()) -> list[dict]:
    """Windows cut to the model's input spec (or an .npy of windows) → Predict in batches → a table."""
    spec_model = loaded_model(ctx, model)
    if spec_model is None:
        raise CliError(f"model {model!r} is not loaded (quakestack models load {model})")
    spec = spec_model.input_spec
    path = Path(path)
    if path.suffix == ".npy":
        windows = windows_from_npy(path, spec.n_samples)
    else:
        windows = cut_windows(ctx, read_waveforms([path]), spec.n_samples, spec.sampling_rate_hz,
                              spec.component_order, stride_s, policy)
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
             stride_s: float | None = None, threshold: float | None = None, object_key: str = "",
             policy: InputPolicy = InputPolicy()) -> list[dict]:
    """Stream files to InferenceService.Annotate (or AnnotateFile for an object key); a table of detections."""
    if threshold is not None and not 0 < threshold <= 1:
        raise CliError(f"--threshold must be in (0, 1], got {threshold:g} (omit it for the default: 0.5 for "
                       "detections, 0.3 for picks)")
    if stride_s is not None and stride_s <= 0:
        raise CliError(f"--stride-s must be > 0, got {stride_s:g} (omit it for half the model's window)")
    config = dict(model=model, stride_s=stride_s or 0.0, magnitude_model=magnitude_model,
                  input_policy=inference_pb2.InputPolicy(max_upsampling=policy.max_upsampling,
                                                         missing_components=policy.missing_components),
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
        spec = loaded_model(ctx, model)
        if spec is None:
            raise CliError(f"model {model!r} is not loaded (quakestack models load {model})")
        inputs = spec.input_spec
        stream = gated(ctx, read_waveforms(paths), inputs.sampling_rate_hz, inputs.component_order, policy)
        if not len(stream):
            raise CliError(f"nothing to annotate: no trace of {', '.join(str(p) for p in paths)} is one the model "
                           f"reads ({inputs.component_order}) at a rate it may use (see the notes above)")
        bar = ProgressBar("annotate", ctx.stderr, enabled=not ctx.quiet and not ctx.as_json)
        requests = [inference_pb2.AnnotateRequest(config=inference_pb2.AnnotateConfig(**config))]

        def feed() -> Iterator[inference_pb2.AnnotateRequest]:
            yield from requests
            yield from _chunks(stream, CHUNK_S, bar)

        responses = inference(ctx).Annotate(feed(), timeout=1800)
    try:
        for response in responses:
            if not object_key:
                for warning in response.warnings:  # the server's verdicts on whole stations (the last message)
                    ctx.note(warning)
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
    policy_arguments(p)
    p.set_defaults(func=lambda ctx, a: predict(ctx, a.model, a.file, a.stride_s, policy_of(a)))
    p = sub.add_parser("annotate", parents=[common], help="detect events in continuous data")
    p.add_argument("model", help="loaded detector (or classifier / picker)")
    p.add_argument("files", nargs="*", help="miniSEED files (any ObsPy format)")
    p.add_argument("--magnitude-model", default="", help="loaded magnitude model run on each detection")
    p.add_argument("--stride-s", type=float, default=None, help="seconds between windows (default: half the window)")
    p.add_argument("--threshold", type=float, default=None, help="in (0, 1]; default 0.5 (detections), 0.3 (picks)")
    p.add_argument("--key", default="", help="annotate an object in the bucket with AnnotateFile instead")
    policy_arguments(p)
    p.set_defaults(func=lambda ctx, a: annotate(ctx, a.model, a.files, magnitude_model=a.magnitude_model,
                                                stride_s=a.stride_s, threshold=a.threshold, object_key=a.key,
                                                policy=policy_of(a)))
