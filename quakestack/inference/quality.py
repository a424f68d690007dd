"""The data-quality gate between waveforms and a model: what was done to each station's data, or why not.

Every path that feeds continuous data to a model (Annotate, AnnotateFile, annotation jobs' station-days,
the CLI's predict and annotate, catalog station magnitudes) goes through it, so a station's outcome is
explicit and counted, never a silent zero: *used*, *resampled* (from which rate), *gap-filled* (how many
samples, with zeros), or *refused* (why). The defaults refuse what would otherwise be a wrong number:

- a station without a component the model reads (a Z-only station before a ZNE model: its N and E
  would be zeros the model never saw in training); `missing_components="zeros"` allows it for a model
  trained for it (channel dropout), and says so for every station it fills;
- a trace that would be upsampled by more than `max_upsampling` (a 1 Hz LH channel is not a 100 Hz
  record, however it is interpolated);
- a station whose record is shorter than one window of the model (both lengths are given).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from quakestack.errors import InvalidArgument

# A component letter a model reads, and the channel-code letters that stand for it (orthogonal horizontals).
COMPONENT_ALIASES = {"N": "N1", "E": "E2", "Z": "Z3"}
MISSING_COMPONENT_POLICIES = ("refuse", "zeros")
DEFAULT_MAX_UPSAMPLING = 2.5  # 40 Hz to 100 Hz passes; 20 Hz BH or 1 Hz LH channels do not
RATE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class InputPolicy:
    """What the gate may do to a station's data for a model; every field has the default users can trust."""

    max_upsampling: float = DEFAULT_MAX_UPSAMPLING
    missing_components: str = "refuse"

    def __post_init__(self) -> None:
        if not self.max_upsampling >= 1.0:
            raise InvalidArgument(f"input_policy.max_upsampling must be >= 1 (1: never upsample), got "
                                  f"{self.max_upsampling:g}")
        if self.missing_components not in MISSING_COMPONENT_POLICIES:
            raise InvalidArgument(f"input_policy.missing_components must be one of {list(MISSING_COMPONENT_POLICIES)}"
                                  f", got {self.missing_components!r}")

    @classmethod
    def of(cls, max_upsampling: float = 0.0, missing_components: str = "") -> InputPolicy:
        """From request fields where 0 / "" mean the default."""
        return cls(max_upsampling or DEFAULT_MAX_UPSAMPLING, missing_components or "refuse")


@dataclass
class StationInput:
    """What happened to one station's (NET.STA.LOC) data on its way to the model."""

    station: str
    components: str = ""  # the model's components found, in the model's order
    resampled_from_hz: float = 0.0  # 0: at the model's rate
    gap_filled_samples: int = 0  # zeros written where the record had no samples (gaps, NaN, a short component)
    zero_components: str = ""  # components the record lacks, filled with zeros (missing_components="zeros")
    refused: str = ""  # why the station was not annotated; "" when it was

    @property
    def outcome(self) -> str:
        if self.refused:
            return "refused"
        if self.zero_components or self.gap_filled_samples:
            return "gap-filled"
        return "resampled" if self.resampled_from_hz else "used"

    def note(self, rate: float) -> str | None:
        """One line for a person; None when the data went in untouched."""
        if self.refused:
            return f"refused {self.station}: {self.refused}"
        done = []
        if self.resampled_from_hz:
            done.append(f"resampled from {self.resampled_from_hz:g} Hz to the model's {rate:g} Hz")
        if self.gap_filled_samples:
            done.append(f"{self.gap_filled_samples} samples gap-filled with zeros")
        if self.zero_components:
            done.append(f"components {self.zero_components} missing, filled with zeros (missing_components=zeros)")
        return f"{self.station}: {'; '.join(done)}" if done else None

    def to_dict(self) -> dict:
        return {"station": self.station, "outcome": self.outcome, "components": self.components,
                "resampled_from_hz": self.resampled_from_hz, "gap_filled_samples": self.gap_filled_samples,
                "zero_components": self.zero_components, "refused": self.refused}


@dataclass
class InputLedger:
    """Per-station outcomes of one annotation (a stream, a file, a station-day), in station order."""

    rate: float
    stations: dict[str, StationInput] = field(default_factory=dict)

    def station(self, name: str) -> StationInput:
        return self.stations.setdefault(name, StationInput(name))

    def reports(self) -> list[StationInput]:
        return [self.stations[name] for name in sorted(self.stations)]

    def notes(self) -> list[str]:
        return [line for s in self.reports() if (line := s.note(self.rate))]

    def counts(self) -> dict[str, int]:
        """Stations per outcome, and the gap-filled samples of all: what a summary states."""
        out = {"used": 0, "resampled": 0, "gap-filled": 0, "refused": 0}
        for s in self.stations.values():
            out[s.outcome] += 1
        out["gap_filled_samples"] = sum(s.gap_filled_samples for s in self.stations.values())
        return out


def component_index(letter: str, components: str) -> int | None:
    """Where a channel code's last letter goes among a model's components (1/2/3 stand in for N/E/Z)."""
    letter = letter.upper()
    for i, comp in enumerate(components.upper()):
        if letter in COMPONENT_ALIASES.get(comp, comp):
            return i
    return None


def upsampling_refusal(trace_rate: float, rate: float, policy: InputPolicy) -> str:
    """Why a trace at ``trace_rate`` may not be resampled up to the model's ``rate``; "" when it may."""
    if trace_rate <= 0:
        return f"sampling rate {trace_rate:g} Hz"
    factor = rate / trace_rate
    if factor > policy.max_upsampling * (1 + RATE_TOLERANCE):
        return (f"sampled at {trace_rate:g} Hz; the model's {rate:g} Hz would upsample it {factor:g}x "
                f"(input_policy.max_upsampling is {policy.max_upsampling:g})")
    return ""


def short_refusal(n: int, n_samples: int, rate: float) -> str:
    return (f"{n} samples ({n / rate:g} s) at {rate:g} Hz, shorter than the model's window of {n_samples} samples "
            f"({n_samples / rate:g} s)")


def missing_refusal(found: str, components: str) -> str:
    return (f"has components {found or 'none'} of the model's {components}: the missing ones would be zeros the "
            "model never saw (input_policy.missing_components=zeros allows it for a model trained with channel "
            "dropout)")


def gate_stream(stream, rate: float, components: str, policy: InputPolicy,
                ledger: InputLedger):  # obspy.Stream -> obspy.Stream
    """Whole traces on their way to a model: over-upsampled stations refused, the rest resampled to ``rate``
    and merged per channel, gaps and NaN filled with zeros and counted; what went where is in ``ledger``.

    Missing components and short records are judged over the whole record (a streamed record arrives in
    pieces), by :func:`judge_station` once the record is complete."""
    import obspy

    kept = obspy.Stream()
    refused: set[str] = set()
    for tr in stream:
        station = tr.id.rsplit(".", 1)[0]
        if component_index(tr.stats.channel[-1:], components) is None:
            continue  # a channel the model does not read
        report = ledger.station(station)
        tr_rate = float(tr.stats.sampling_rate)
        if abs(tr_rate - rate) > RATE_TOLERANCE * rate:
            why = upsampling_refusal(tr_rate, rate, policy)
            if why:
                report.refused = report.refused or why
                refused.add(station)
                continue
            report.resampled_from_hz = tr_rate
        kept += tr
    kept = obspy.Stream([tr for tr in kept if tr.id.rsplit(".", 1)[0] not in refused])
    for tr in kept:
        tr.data = np.asarray(tr.data, dtype=np.float64)
        if np.ma.isMaskedArray(tr.data) or not np.isfinite(tr.data).all():
            tr.data = np.ma.masked_invalid(tr.data)
    kept = kept.split()  # masked (gaps, NaN) -> pieces; resampling runs on whole pieces only
    for tr in kept:
        if abs(tr.stats.sampling_rate - rate) > RATE_TOLERANCE * rate:
            tr.resample(rate)
    kept.merge(method=1, fill_value=None)  # on one grid per channel; the holes left are the gaps
    for tr in kept:
        data = tr.data
        if np.ma.isMaskedArray(data):
            ledger.station(tr.id.rsplit(".", 1)[0]).gap_filled_samples += int(np.ma.count_masked(data))
            data = data.filled(0.0)
        tr.data = np.asarray(data, dtype=np.float32)
    return kept


def judge_station(report: StationInput, found: str, components: str, n: int, n_samples: int, rate: float,
                  policy: InputPolicy) -> bool:
    """The whole record's verdict: missing components and short records refused (with why); True if used."""
    if report.refused:
        return False
    report.components = "".join(c for c in components if c in found)
    missing = "".join(c for c in components if c not in found)
    if missing:
        if policy.missing_components == "refuse" or not report.components:
            report.refused = missing_refusal(report.components, components)
            return False
        report.zero_components = missing
    if n < n_samples:
        report.refused = short_refusal(n, n_samples, rate)
        return False
    return True
