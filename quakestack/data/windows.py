"""Cut fixed-length windows: events with P at a requested (fixed or seeded random) offset, noise pick-free."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

from .preprocess import GAP_FILLED, GAP_MASK
from .records import Skipped, TraceRecord


@dataclass
class WindowSpec:
    """Window length and placement.

    ``p_offset_s`` fixes the P arrival at that many seconds into the window; ``p_offset_range_s``
    draws it (seeded per trace, on the sample grid) from [min, max]. With neither, an event window
    starts at the first sample of its trace (STEAD alignment kept), unless the source's reader
    gives a default P offset (``Reader.default_p_offset_s``: 5 s for continuous data). Noise
    windows are taken from the middle of the noise record (``noise_position="center"``) or at a
    seeded random position.
    """

    length_s: float = 60.0
    sampling_rate: float = 100.0
    p_offset_s: float | None = None
    p_offset_range_s: tuple[float, float] | None = None
    include_noise: bool = True
    noise_position: str = "center"  # "center" | "random"

    def __post_init__(self) -> None:
        if self.length_s <= 0 or self.sampling_rate <= 0:
            raise ValueError("window length_s and sampling_rate must be positive")
        if self.p_offset_range_s is not None:
            lo, hi = self.p_offset_range_s
            if lo > hi or lo < 0:
                raise ValueError(f"p_offset_range_s must satisfy 0 <= min <= max, got {self.p_offset_range_s}")
            if hi >= self.length_s:
                raise ValueError("p_offset_range_s max must be inside the window")
        if self.p_offset_s is not None and not 0 <= self.p_offset_s < self.length_s:
            raise ValueError(f"p_offset_s must be in [0, length_s), got {self.p_offset_s}")
        if self.noise_position not in ("center", "random"):
            raise ValueError(f"noise_position must be 'center' or 'random', got {self.noise_position!r}")

    @property
    def n_samples(self) -> int:
        return int(round(self.length_s * self.sampling_rate))

    def offset_bounds_s(self, default: float | None = None) -> tuple[float, float] | None:
        """(min, max) P offset in seconds, or None when windows keep the trace's own alignment."""
        if self.p_offset_s is not None:
            return self.p_offset_s, self.p_offset_s
        if self.p_offset_range_s is not None:
            return tuple(self.p_offset_range_s)  # type: ignore[return-value]
        return None if default is None else (default, default)


def item_rng(seed: int, trace_name: str) -> np.random.Generator:
    """A generator that depends only on (seed, trace): offsets do not change when shards are re-cut."""
    digest = hashlib.sha256(f"{seed}|{trace_name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _count_gap_filled(rec: TraceRecord, start: int, length: int) -> TraceRecord:
    """The record's gap mask becomes the window's count of filled samples (stored per window)."""
    mask = rec.extra.get(GAP_MASK)
    if mask is None:
        return rec
    extra = {k: v for k, v in rec.extra.items() if k != GAP_MASK}
    extra[GAP_FILLED] = int(np.count_nonzero(mask[start:start + length]))
    return dataclasses.replace(rec, extra=extra)


def cut_window(
    rec: TraceRecord, spec: WindowSpec, seed: int = 0, default_offset_s: float | None = None
) -> TraceRecord | Skipped:
    """Cut one window from a (preprocessed, spec.sampling_rate) record; labels move with it."""
    src = rec.extra.get("source_file", rec.station)
    length = spec.n_samples
    n = rec.n_samples
    if n < length:
        return Skipped(src, rec.trace_name, "window longer than trace", f"{length} > {n} samples")
    rate = spec.sampling_rate
    if rec.is_noise:
        if spec.noise_position == "random":
            start = int(item_rng(seed, rec.trace_name).integers(0, n - length + 1))
        else:
            start = (n - length) // 2
    else:
        bounds = spec.offset_bounds_s(default_offset_s)
        if bounds is None:
            start = 0
        elif rec.p_arrival_sample is None:
            return Skipped(src, rec.trace_name, "event trace without a P arrival")
        else:
            lo, hi = int(round(bounds[0] * rate)), int(round(bounds[1] * rate))
            off = lo if lo == hi else int(item_rng(seed, rec.trace_name).integers(lo, hi + 1))
            start = int(round(rec.p_arrival_sample - off))
            if start < 0 or start + length > n:
                return Skipped(
                    src,
                    rec.trace_name,
                    "window does not fit in trace at the requested P offset",
                    f"needs samples {start}..{start + length} of {n}, P offset {off / rate:g} s",
                )
    rec = _count_gap_filled(rec, start, length)
    if start == 0 and length == n:
        return rec
    labels = {
        k: (None if getattr(rec, k) is None else getattr(rec, k) - start)
        for k in ("p_arrival_sample", "s_arrival_sample")
    }
    return dataclasses.replace(
        rec,
        data=np.ascontiguousarray(rec.data[:, start : start + length]),
        start_time=None if rec.start_time is None else rec.start_time + start / rate,
        extra={**rec.extra, "window_start_sample": start},
        **labels,
    )
