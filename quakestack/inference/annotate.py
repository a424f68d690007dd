"""Continuous multi-station annotation, streaming: chunks in, final detections and picks out.

Per station (NET.STA.LOC) the components (last letter of the channel code, Z12 accepted for ZNE) are
buffered on one sample grid that starts at the station's first sample. Windows of the model's length
start every ``stride`` samples on that grid; windows of all stations go to the model together (one
batched call). Outputs are stacked SeisBench-style: each window adds its per-window probability (or
its per-sample probabilities for pickers) over the samples it covers, and the stack is the average.
A sample is final once no future window can cover it (it lies before the next window's start); only
final samples are triggered on, so what comes back never changes later — and since windows sit on
the station's own grid, the results do not depend on how the data were chunked.

At the end of the stream one last window is aligned to the station's last sample (as SeisBench does)
and everything left is final. Detections: probability >= threshold switches on, below switches off;
peak time and probability are kept. With a magnitude model, each detection waits until a window with
its onset at the model's trained P offset (card ``p_offset_s``) is complete, and that window's
magnitude is attached. The onset is the detection's peak for window detectors (the stacked
probability is highest where most windows hold the onset) and its start for pickers' detection
channel (EQTransformer's detection begins at P).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from quakestack.errors import InvalidArgument
from quakestack.inference.quality import (
    RATE_TOLERANCE,
    InputLedger,
    InputPolicy,
    StationInput,
    component_index,
    gate_stream,
    judge_station,
)
from quakestack.inference.servables.base import NOISE_CLASS, ServingSpec

PredictFn = Callable[[np.ndarray], dict[str, np.ndarray]]
MAX_WINDOWS_PER_CALL = 1024


@dataclass
class DetectionResult:
    station: str
    start: float
    end: float
    peak_time: float
    probability: float
    magnitude: float | None = None
    class_label: str = ""


@dataclass
class PickResult:
    station: str
    phase: str
    time: float
    probability: float


@dataclass
class AnnotateOptions:
    stride_s: float = 0.0  # 0: half the window
    threshold: float | None = None  # None: 0.5 for detections, 0.3 for picks (SeisBench's default)


OFF_RATIO = 0.5  # a trigger switches off below this fraction of its threshold


@dataclass
class _Trigger:
    """On/off trigger state of one output channel, carried across final segments."""

    open_start: int | None = None
    peak_index: int = 0
    peak_value: float = -1.0


@dataclass
class _PendingMagnitude:
    detection: DetectionResult
    window_start: int


@dataclass
class _Station:
    name: str
    rate: float
    t0: float
    n_comp: int
    n_out: int
    lenient: bool = False  # missing components allowed (zeros): windows run on the components seen
    buf_start: int = 0
    data: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    ends: list[int] = field(default_factory=list)
    next_ws: int = 0
    acc_start: int = 0
    acc: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    cnt: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    finished: bool = False
    final_upto: int = 0
    triggers: dict[int, _Trigger] = field(default_factory=dict)
    pending: list[_PendingMagnitude] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    holes: int = 0  # samples never written between or before a component's chunks (zeros in the buffer)

    def __post_init__(self) -> None:
        self.data = np.zeros((self.n_comp, 0), np.float32)
        self.ends = [0] * self.n_comp
        self.acc = np.zeros((self.n_out, 0), np.float32)

    def time(self, index: int | float) -> float:
        return self.t0 + index / self.rate

    def ensure(self, end: int) -> None:
        """Grow the sample buffer (geometrically) so absolute index ``end`` fits."""
        need = end - self.buf_start
        if need > self.data.shape[1]:
            grown = np.zeros((self.n_comp, max(need, 2 * self.data.shape[1])), np.float32)
            grown[:, : self.data.shape[1]] = self.data
            self.data = grown

    def write(self, comp: int, start: int, samples: np.ndarray) -> None:
        if start > self.ends[comp]:
            self.holes += start - self.ends[comp]
        self.seen.add(comp)
        if start < self.buf_start:
            samples = samples[self.buf_start - start:]
            start = self.buf_start
        if samples.size == 0:
            return
        self.ensure(start + samples.size)
        a = start - self.buf_start
        self.data[comp, a:a + samples.size] = samples
        self.ends[comp] = max(self.ends[comp], start + samples.size)

    def available(self) -> int:
        if self.finished:
            return max(self.ends)
        if self.lenient:
            return min((self.ends[c] for c in self.seen), default=0)
        return min(self.ends)

    def tail_zeros(self) -> int:
        """Samples of the seen components that end before the station's last sample (zeros in its windows)."""
        end = max(self.ends)
        return sum(end - self.ends[c] for c in self.seen)

    def window(self, start: int, length: int) -> np.ndarray:
        """Samples [start, start + length), zero where there are none (before/after the data)."""
        out = np.zeros((self.n_comp, length), np.float32)
        a, b = max(start, self.buf_start), min(start + length, self.buf_start + self.data.shape[1])
        if b > a:
            out[:, a - start:b - start] = self.data[:, a - self.buf_start:b - self.buf_start]
        return out

    def ensure_acc(self, end: int) -> None:
        need = end - self.acc_start
        if need > self.acc.shape[1]:
            size = max(need, 2 * self.acc.shape[1])
            acc = np.zeros((self.n_out, size), np.float32)
            cnt = np.zeros(size, np.float32)
            acc[:, : self.acc.shape[1]] = self.acc
            cnt[: self.cnt.size] = self.cnt
            self.acc, self.cnt = acc, cnt

    def trim(self, keep_data_from: int, keep_acc_from: int) -> None:
        """Forget samples no window, stack or pending magnitude needs; amortised (only large prefixes)."""
        drop = keep_data_from - self.buf_start
        if drop > 0 and drop >= self.data.shape[1] // 2:
            self.data = self.data[:, drop:].copy()
            self.buf_start = keep_data_from
        drop = keep_acc_from - self.acc_start
        if drop > 0 and drop >= self.acc.shape[1] // 2:
            self.acc, self.cnt = self.acc[:, drop:].copy(), self.cnt[drop:].copy()
            self.acc_start = keep_acc_from


class Annotator:
    """Streaming annotation with one model (plus an optional magnitude model)."""

    def __init__(self, spec: ServingSpec, predict: PredictFn, options: AnnotateOptions = AnnotateOptions(),
                 magnitude: tuple[ServingSpec, PredictFn] | None = None, policy: InputPolicy = InputPolicy()):
        if spec.task == "magnitude":
            raise InvalidArgument("Annotate needs a detector, classifier or picker; pass a magnitude model as "
                                  "magnitude_model")
        self.spec = spec
        self.predict = predict
        self.length = spec.n_samples
        stride = options.stride_s * spec.sampling_rate if options.stride_s > 0 else self.length // 2
        self.stride = max(1, min(self.length, int(round(stride))))
        if options.stride_s < 0:
            raise InvalidArgument(f"stride_s must be >= 0 (0: half the window), got {options.stride_s:g}")
        if options.threshold is not None and not 0 < options.threshold <= 1:
            raise InvalidArgument(f"threshold must be in (0, 1], got {options.threshold:g} (leave it unset for the "
                                  "default: 0.5 for detections, 0.3 for picks)")
        self.sequence = spec.task == "picking"
        self.channels = self._channels()
        default = 0.3 if self.sequence else 0.5
        self.threshold = default if options.threshold is None else options.threshold
        self.magnitude = magnitude
        if magnitude is not None:
            mspec = magnitude[0]
            if mspec.task != "magnitude":
                raise InvalidArgument(f"magnitude_model must be a magnitude model, not a {mspec.task} model")
            if abs(mspec.sampling_rate - spec.sampling_rate) > RATE_TOLERANCE * spec.sampling_rate:
                raise InvalidArgument(f"magnitude model runs at {mspec.sampling_rate:g} Hz, the detector at "
                                      f"{spec.sampling_rate:g} Hz")
            if mspec.extra_inputs:
                raise InvalidArgument(f"magnitude model needs extra inputs {list(mspec.extra_inputs)}; "
                                      "Annotate cannot supply them")
            lacking = "".join(c for c in mspec.components if component_index(c, spec.components) is None)
            if lacking and policy.missing_components == "refuse":
                raise InvalidArgument(f"the magnitude model reads {mspec.components}, the detector only "
                                      f"{spec.components}: {lacking} would be zeros (input_policy.missing_components"
                                      "=zeros allows it for a model trained with channel dropout)")
        self.policy = policy
        self.ledger = InputLedger(spec.sampling_rate)
        self.stations: dict[str, _Station] = {}
        self.withheld_magnitudes: dict[str, int] = {}  # station -> detections whose magnitude window ran off the data
        self._detections: list[DetectionResult] = []
        self._picks: list[PickResult] = []

    def _channels(self) -> list[str]:
        """Names of the stacked output channels: 'detection' (+ classes) or the picker's labels."""
        if self.sequence:
            return [s for s in self.spec.sequence_labels.split(",") if s]
        if self.spec.task == "classification":
            return ["detection", *self.spec.class_names]
        return ["detection"]

    # -- input --------------------------------------------------------------------------------
    def add_samples(self, seed_id: str, start_time: float, sampling_rate: float, samples: np.ndarray) -> None:
        parts = seed_id.split(".")
        if len(parts) != 4 or not parts[3]:
            raise InvalidArgument(f"seed_id must be NET.STA.LOC.CHA, got {seed_id!r}")
        comp = component_index(parts[3][-1], self.spec.components)
        if comp is None:
            return  # a component the model does not use
        name = ".".join(parts[:3])
        report = self.ledger.station(name)
        if report.refused:
            return
        if abs(sampling_rate - self.spec.sampling_rate) > RATE_TOLERANCE * self.spec.sampling_rate:
            raise InvalidArgument(f"{seed_id}: sampling rate {sampling_rate:g} Hz; the model expects "
                                  f"{self.spec.sampling_rate:g} Hz: resample raw chunks before sending them "
                                  "(`quakestack annotate` does), or send miniSEED bytes, which are resampled")
        samples = np.asarray(samples, dtype=np.float32)
        bad = ~np.isfinite(samples)
        if bad.any():
            report.gap_filled_samples += int(bad.sum())
            samples = np.where(bad, np.float32(0.0), samples)
        station = self.stations.get(name)
        if station is None:
            station = _Station(name, self.spec.sampling_rate, float(start_time), len(self.spec.components),
                               len(self.channels), lenient=self.policy.missing_components == "zeros")
            self.stations[name] = station
        start = int(round((float(start_time) - station.t0) * station.rate))
        station.write(comp, start, samples)

    def add_stream(self, stream) -> None:  # obspy.Stream
        """Whole traces (miniSEED bytes, files) through the quality gate: resampled to the model's rate
        within the policy's limit (ObsPy's Fourier resampling), gaps zero-filled and counted."""
        gated = gate_stream(stream, self.spec.sampling_rate, self.spec.components, self.policy, self.ledger)
        for tr in gated:
            self.add_samples(tr.id, tr.stats.starttime.timestamp, float(tr.stats.sampling_rate), tr.data)

    def reports(self) -> list[StationInput]:
        """Every station's outcome (used, resampled, gap-filled, refused); complete after :meth:`finish`."""
        return self.ledger.reports()

    def notes(self) -> list[str]:
        """One line per station whose data was changed or refused, and per withheld magnitude."""
        withheld = [f"{station}: no magnitude for {n} detection(s): the magnitude model's window runs past the "
                    "record" for station, n in sorted(self.withheld_magnitudes.items())]
        return self.ledger.notes() + withheld

    # -- processing ---------------------------------------------------------------------------
    def step(self) -> tuple[list[DetectionResult], list[PickResult]]:
        """Run every complete window, trigger on what became final; return the new results."""
        self._run_windows(final=False)
        return self._drain()

    def finish(self) -> tuple[list[DetectionResult], list[PickResult]]:
        """End of data: every station judged whole (missing components, too short: refused and forgotten),
        last windows aligned to each station's end, everything final."""
        for name, station in list(self.stations.items()):
            station.finished = True
            report = self.ledger.station(name)
            found = "".join(self.spec.components[c] for c in sorted(station.seen))
            if not judge_station(report, found, self.spec.components, station.available(), self.length,
                                 self.spec.sampling_rate, self.policy):
                del self.stations[name]
                continue
            report.gap_filled_samples += station.holes + station.tail_zeros()
        self._run_windows(final=True)
        return self._drain()

    def _drain(self) -> tuple[list[DetectionResult], list[PickResult]]:
        detections, picks = self._detections, self._picks
        self._detections, self._picks = [], []
        detections.sort(key=lambda d: (d.start, d.station))
        picks.sort(key=lambda p: (p.time, p.station, p.phase))
        return detections, picks

    def _planned(self, final: bool) -> list[tuple[_Station, int]]:
        plan = []
        for station in self.stations.values():
            available = station.available()
            while station.next_ws + self.length <= available:
                plan.append((station, station.next_ws))
                station.next_ws += self.stride
            if final and available > 0:
                last = station.next_ws - self.stride
                covered = last + self.length if station.next_ws > 0 else 0
                if covered < available:
                    plan.append((station, max(0, available - self.length)))
                station.next_ws = max(station.next_ws, available)
        return plan

    def _run_windows(self, final: bool) -> None:
        plan = self._planned(final)
        for i in range(0, len(plan), MAX_WINDOWS_PER_CALL):
            part = plan[i:i + MAX_WINDOWS_PER_CALL]
            x = np.stack([station.window(start, self.length) for station, start in part])
            out = self._per_window(self.predict(x))
            for (station, start), y in zip(part, out, strict=True):
                self._stack(station, start, y)
        for station in self.stations.values():
            self._finalize(station, final)
        self._run_magnitudes(final)
        for station in self.stations.values():
            self._trim(station)

    def _per_window(self, out: dict[str, np.ndarray]) -> np.ndarray:
        """Model outputs -> [N, K] per-window values or [N, K, L] per-sample values."""
        if self.sequence:
            return out["sequence"]
        cols = [out["detection_probability"][:, None]]
        if self.spec.task == "classification":
            cols.append(out["class_probabilities"])
        return np.concatenate(cols, axis=1).astype(np.float32)

    def _stack(self, station: _Station, start: int, y: np.ndarray) -> None:
        """Add one window's output over the samples it covers (never into samples already final)."""
        end = start + self.length
        lo = max(start, station.final_upto, station.acc_start)
        if lo >= end:
            return
        station.ensure_acc(end)
        a, b = lo - station.acc_start, end - station.acc_start
        if y.ndim == 1:
            station.acc[:, a:b] += y[:, None]
            station.cnt[a:b] += 1.0
        else:
            y = y[:, lo - start:]
            station.acc[:, a:b] += np.where(np.isfinite(y), y, 0.0)
            station.cnt[a:b] += np.isfinite(y[0])

    def _finalize(self, station: _Station, final: bool) -> None:
        """Trigger on samples [acc_start.., next window start) — they can no longer change."""
        upto = station.available() if final else station.next_ws
        f0 = station.final_upto
        if upto <= f0:
            if final:
                self._close_open(station, f0)
            return
        station.ensure_acc(upto)
        a, b = f0 - station.acc_start, upto - station.acc_start
        probs = station.acc[:, a:b] / np.maximum(station.cnt[a:b], 1.0)
        for k, name in enumerate(self.channels):
            if name in ("detection", "Detection") or (self.sequence and name in ("P", "S")):
                self._scan(station, k, name, probs, f0)
        station.final_upto = upto
        if final:
            self._close_open(station, upto)

    def _scan(self, station: _Station, k: int, name: str, probs: np.ndarray, base: int) -> None:
        """Trigger on at the threshold, off below half of it (ObsPy's trigger_onset, as SeisBench picks).

        Hysteresis keeps a probability that hovers around the threshold one event, not thousands.
        The state carries across final segments, so the chunking of the input never matters.
        """
        p = probs[k]
        state = station.triggers.setdefault(k, _Trigger())
        rises = np.flatnonzero(p >= self.threshold)
        falls = np.flatnonzero(p < self.threshold * OFF_RATIO)
        pos = 0
        while pos < p.size:
            if state.open_start is None:
                i = int(np.searchsorted(rises, pos))
                if i == len(rises):
                    return
                pos = int(rises[i])
                state.open_start = base + pos
            j = int(np.searchsorted(falls, pos))
            end = int(falls[j]) if j < len(falls) else p.size
            if end > pos:
                m = pos + int(np.argmax(p[pos:end]))
                if p[m] > state.peak_value:
                    state.peak_index, state.peak_value = base + m, float(p[m])
            if end == p.size:
                return
            self._emit(station, k, name, state, base + end, probs, base)
            pos = end

    def _close_open(self, station: _Station, end: int) -> None:
        for k, state in station.triggers.items():
            if state.open_start is not None:
                self._emit(station, k, self.channels[k], state, end, None, 0)

    def _emit(self, station: _Station, k: int, name: str, state: _Trigger, end: int,
              probs: np.ndarray | None, base: int) -> None:
        start = state.open_start
        assert start is not None
        if self.sequence and name in ("P", "S"):
            self._picks.append(PickResult(station.name, name, station.time(state.peak_index), state.peak_value))
        else:
            detection = DetectionResult(station.name, station.time(start), station.time(end),
                                        station.time(state.peak_index), state.peak_value,
                                        class_label=self._class_label(station, start, end))
            if self.magnitude is None:
                self._detections.append(detection)
            else:
                onset = start if self.sequence else state.peak_index
                offset = int(round(self.magnitude[0].p_offset_s * station.rate))
                station.pending.append(_PendingMagnitude(detection, onset - offset))
        state.open_start, state.peak_index, state.peak_value = None, 0, -1.0

    def _class_label(self, station: _Station, start: int, end: int) -> str:
        """Classifiers: the most likely non-noise class over the detection's samples."""
        if self.spec.task != "classification":
            return ""
        a, b = max(start - station.acc_start, 0), max(end - station.acc_start, 1)
        mean = (station.acc[1:, a:b] / np.maximum(station.cnt[a:b], 1.0)).mean(axis=1)
        names = list(self.spec.class_names)
        order = [i for i in np.argsort(-mean) if names[i] != NOISE_CLASS]
        return names[order[0]] if order else names[int(np.argmax(mean))]

    def _run_magnitudes(self, final: bool) -> None:
        if self.magnitude is None:
            return
        mspec, mpredict = self.magnitude
        ready = [(station, item) for station in self.stations.values() for item in station.pending
                 if final or item.window_start + mspec.n_samples <= station.available()]
        if final:  # a window running off the record would be part zeros: the detection keeps no magnitude
            for station, item in [(s, i) for s, i in ready if i.window_start < 0
                                  or i.window_start + mspec.n_samples > s.available()]:
                ready.remove((station, item))
                station.pending.remove(item)
                self._detections.append(item.detection)
                self.withheld_magnitudes[station.name] = self.withheld_magnitudes.get(station.name, 0) + 1
        if not ready:
            return
        x = np.stack([station.window(item.window_start, mspec.n_samples) for station, item in ready])
        x = self._reorder(x, mspec.components)
        mags = mpredict(x)["magnitude"]
        for (station, item), mag in zip(ready, mags, strict=True):
            item.detection.magnitude = float(mag)
            station.pending.remove(item)
            self._detections.append(item.detection)

    def _reorder(self, x: np.ndarray, components: str) -> np.ndarray:
        """Detector component order -> the magnitude model's (missing ones zero: only where the policy
        allows it, checked when the annotator was made)."""
        if components == self.spec.components:
            return x
        out = np.zeros((x.shape[0], len(components), x.shape[2]), np.float32)
        for i, comp in enumerate(components):
            j = component_index(comp, self.spec.components)
            if j is not None:
                out[:, i] = x[:, j]
        return out

    def _trim(self, station: _Station) -> None:
        # the next window, and the window aligned to the end of the stream, start at or after this
        keep = min(station.next_ws, station.available() - self.length)
        final_upto = station.final_upto
        open_starts = [t.open_start for t in station.triggers.values() if t.open_start is not None]
        keep_acc = min([final_upto, *open_starts])
        if self.magnitude is not None:
            offset = int(round(self.magnitude[0].p_offset_s * station.rate))
            # an open detection's onset (its start or later peak) lies after its start
            keep = min([keep, *(s - offset for s in open_starts), *(p.window_start for p in station.pending)])
        station.trim(keep, keep_acc)
