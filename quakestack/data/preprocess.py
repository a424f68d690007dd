"""Per-record preprocessing with ObsPy: detrend, taper, zero-phase filter, resample, reorder, gaps.

Everything is off by default except the component reorder (a cheap numpy take), so that the common
path (STEAD already at 100 Hz, ZNE) costs almost nothing. Normalisation is NOT applied to stored
windows: it is recorded in the manifest and applied at training time with :func:`normalize`, so
one dataset serves models that want raw amplitudes (magnitude) and models that want normalised ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from obspy import Stream, Trace

from quakestack.inference.quality import DEFAULT_MAX_UPSAMPLING

from .records import Skipped, TraceRecord

GAP_POLICIES = ("zeros", "interpolate", "drop")
GAP_MASK = "gap_mask"  # record extra: the samples a gap policy filled (any component)
GAP_FILLED = "gap_filled_samples"  # window extra: how many of its samples were filled
NORMALIZATIONS = ("none", "std", "peak")
# Alternative channel letters a requested component may be found under (orthogonal horizontals).
_ALIASES = {"N": "N1", "E": "E2", "Z": "Z3", "1": "1N", "2": "2E"}


@dataclass
class PreprocessSpec:
    """What to do to each record before windowing (all off by default)."""

    detrend: str | None = None  # ObsPy detrend type: "demean", "linear", "simple"; None = off
    taper_fraction: float = 0.0  # per side (ObsPy max_percentage); 0 = off
    freqmin: float | None = None  # both set: bandpass; one set: highpass / lowpass; zero-phase
    freqmax: float | None = None
    filter_corners: int = 4
    resample: bool = False  # if False, a record at another rate than the window's is skipped
    component_order: str = "ZNE"  # "ZNE", "Z" (one component) or any order of available channels
    gap_policy: str = "zeros"  # "zeros" | "interpolate" | "drop" (gaps come as NaN from readers)
    max_upsampling: float = DEFAULT_MAX_UPSAMPLING  # a record further below the window's rate is skipped

    def __post_init__(self) -> None:
        if self.gap_policy not in GAP_POLICIES:
            raise ValueError(f"gap_policy must be one of {GAP_POLICIES}, got {self.gap_policy!r}")
        if not self.component_order:
            raise ValueError("component_order must name at least one component")
        if self.freqmin is not None and self.freqmax is not None and self.freqmin >= self.freqmax:
            raise ValueError(f"freqmin ({self.freqmin}) must be below freqmax ({self.freqmax})")
        if not self.max_upsampling >= 1.0:
            raise ValueError(f"max_upsampling must be >= 1 (1: never upsample), got {self.max_upsampling:g}")
        if not 0.0 <= self.taper_fraction <= 0.5:
            raise ValueError(f"taper_fraction must be in [0, 0.5], got {self.taper_fraction}")

    @property
    def uses_obspy(self) -> bool:
        return bool(self.detrend or self.taper_fraction or self.freqmin or self.freqmax)


def _reorder(rec: TraceRecord, order: str) -> tuple[np.ndarray, str] | str:
    idx = []
    for comp in order:
        found = next(
            (rec.component_order.find(a) for a in _ALIASES.get(comp, comp) if rec.component_order.find(a) >= 0),
            -1,
        )
        if found < 0:
            return comp
        idx.append(found)
    if idx == list(range(rec.data.shape[0])):
        return rec.data, order
    return rec.data[idx], order


def _fill_gaps(data: np.ndarray, policy: str) -> np.ndarray:
    data = data.copy()
    if policy == "zeros":
        data[np.isnan(data)] = 0.0
        return data
    x = np.arange(data.shape[1])
    for c in range(data.shape[0]):
        bad = np.isnan(data[c])
        if bad.any():
            good = ~bad
            data[c, bad] = np.interp(x[bad], x[good], data[c, good]) if good.any() else 0.0
    return data


def preprocess(rec: TraceRecord, spec: PreprocessSpec, sampling_rate: float) -> TraceRecord | Skipped:
    """Return the record ready for windowing at ``sampling_rate`` Hz, or Skipped with the reason."""
    src = rec.extra.get("source_file", rec.station)
    got = _reorder(rec, spec.component_order)
    if isinstance(got, str):
        return Skipped(
            src,
            rec.trace_name,
            "missing component",
            f"needs {got!r} of {spec.component_order!r}, has {rec.component_order!r}",
        )
    data, order = got
    gap_mask = np.isnan(data).any(axis=0)
    n_gap = int(np.isnan(data).sum())
    if n_gap:
        if spec.gap_policy == "drop":
            return Skipped(src, rec.trace_name, "gap in data (gap policy 'drop')", f"{n_gap} missing samples")
        data = _fill_gaps(data, spec.gap_policy)
        # which samples were filled travels with the record, so each window counts its own (manifest, metadata)
        rec = dataclasses.replace(rec, extra={**rec.extra, GAP_MASK: gap_mask})
    rate = float(rec.sampling_rate or 0.0)
    if rate <= 0:
        return Skipped(src, rec.trace_name, "unknown sampling rate")
    needs_resample = abs(rate - sampling_rate) > 1e-6 * sampling_rate
    if sampling_rate / rate > spec.max_upsampling * (1 + 1e-6):  # interpolation is not a recording
        return Skipped(src, rec.trace_name, "upsampling beyond the limit",
                       f"{rate:g} Hz to {sampling_rate:g} Hz is {sampling_rate / rate:g}x (max_upsampling "
                       f"{spec.max_upsampling:g})")
    if needs_resample and not spec.resample:
        return Skipped(
            src,
            rec.trace_name,
            "wrong sampling rate (resampling disabled)",
            f"{rate:g} Hz, requested {sampling_rate:g} Hz",
        )
    if not spec.uses_obspy and not needs_resample:
        if data is rec.data and order == rec.component_order:
            return rec
        return dataclasses.replace(rec, data=np.ascontiguousarray(data, dtype=np.float32), component_order=order)
    st = Stream(
        [
            Trace(data=data[c].astype(np.float64), header={"sampling_rate": rate, "channel": f"XX{comp}"})
            for c, comp in enumerate(order)
        ]
    )
    try:
        if spec.detrend:
            st.detrend(spec.detrend)
        if spec.taper_fraction:
            st.taper(max_percentage=spec.taper_fraction, type="hann")
        if spec.freqmin and spec.freqmax:
            st.filter(
                "bandpass",
                freqmin=spec.freqmin,
                freqmax=spec.freqmax,
                corners=spec.filter_corners,
                zerophase=True,
            )
        elif spec.freqmin:
            st.filter("highpass", freq=spec.freqmin, corners=spec.filter_corners, zerophase=True)
        elif spec.freqmax:
            st.filter("lowpass", freq=spec.freqmax, corners=spec.filter_corners, zerophase=True)
        if needs_resample:
            st.resample(sampling_rate, window="hann")
    except (ValueError, ArithmeticError) as exc:
        return Skipped(src, rec.trace_name, "preprocessing failed", str(exc))
    out = np.stack([tr.data for tr in st]).astype(np.float32)
    if not np.isfinite(out).all():
        return Skipped(src, rec.trace_name, "non-finite samples after preprocessing")
    factor = sampling_rate / rate
    extra = rec.extra
    if GAP_MASK in extra and needs_resample:  # each new sample takes the mask of the original it falls in
        mask = extra[GAP_MASK]
        extra = {**extra, GAP_MASK: mask[np.minimum((np.arange(out.shape[1]) / factor).astype(int), mask.size - 1)]}
    labels = {
        k: (None if getattr(rec, k) is None else getattr(rec, k) * factor)
        for k in ("p_arrival_sample", "s_arrival_sample")
    }
    return dataclasses.replace(rec, data=out, component_order=order, sampling_rate=sampling_rate, extra=extra,
                               **labels)


def normalize(x: np.ndarray, mode: str) -> np.ndarray:
    """Normalise windows for training: (C, L) or (N, C, L); demeaned per channel, one scale per window.

    "std" divides by the largest channel standard deviation, "peak" by the largest absolute value;
    one scale per window keeps the amplitude ratios between components. "none" returns ``x``.
    """
    if mode == "none":
        return x
    if mode not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {mode!r}")
    y = x - x.mean(axis=-1, keepdims=True)
    if mode == "std":
        scale = y.std(axis=-1, keepdims=True).max(axis=-2, keepdims=True)
    else:
        scale = np.abs(y).max(axis=-1, keepdims=True).max(axis=-2, keepdims=True)
    return (y / np.where(scale > 0, scale, 1.0)).astype(x.dtype, copy=False)
