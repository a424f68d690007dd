"""In-memory records shared by every reader, filter and writer.

Every reader yields the same two shapes: an :class:`ItemRef` (metadata + a locator, cheap to list so
that a whole dataset can be planned before any waveform is read) and, once loaded, a
:class:`TraceRecord`. Anything that cannot be used becomes a :class:`Skipped` with a precise reason
instead of an exception, so one bad trace never kills a job; only a source that cannot be opened at
all raises :class:`DataSourceError`.

Convention: a label that is absent is ``None`` (never NaN); sample indices are floats relative to
the first sample of the record they belong to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from obspy import UTCDateTime

NOISE_CATEGORY = "noise"
NO_NOISE_REASON = "no pick-free stretch for a noise window"  # a Skipped reason: no noise could be cut


class DataSourceError(ValueError):
    """A source file (or catalog) that cannot be used at all: the whole source is rejected."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


@dataclass(frozen=True)
class Skipped:
    """A trace (or pick, or window) that was left out, and why.

    ``reason`` is a stable category (counted in the manifest); ``detail`` holds the specifics
    (numbers, shapes) so that counts do not split into one bucket per value.
    """

    source: str
    trace: str
    reason: str
    detail: str = ""

    @property
    def message(self) -> str:
        tail = f" ({self.detail})" if self.detail else ""
        return f"{self.source}: {self.trace}: {self.reason}{tail}"

    def __str__(self) -> str:
        return self.message


@dataclass(kw_only=True)
class TraceMeta:
    """Identity and labels of one trace; shared by :class:`ItemRef` and :class:`TraceRecord`."""

    trace_name: str
    station: str  # SEED-style "NET.STA.LOC" prefix
    category: str = "earthquake"
    sampling_rate: float | None = None
    start_time: UTCDateTime | None = None
    event_id: str | None = None
    p_arrival_sample: float | None = None
    s_arrival_sample: float | None = None
    p_travel_s: float | None = None
    magnitude: float | None = None
    magnitude_type: str | None = None
    distance_km: float | None = None
    depth_km: float | None = None
    snr_db: float | None = None  # mean over components when the source gives one value per component
    snr_db_components: tuple[float, ...] | None = None
    back_azimuth: float | None = None
    source_latitude: float | None = None
    source_longitude: float | None = None
    origin_time: UTCDateTime | None = None
    location_cluster: int = -1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_noise(self) -> bool:
        return self.category == NOISE_CATEGORY

    @property
    def network(self) -> str:
        return self.station.split(".")[0]

    def label_fields(self) -> dict[str, Any]:
        """The metadata fields (no locator, no waveform) as a plain dict."""
        names = [f for f in TraceMeta.__dataclass_fields__ if f != "extra"]
        out = {n: getattr(self, n) for n in names}
        out["extra"] = dict(self.extra)
        return out


@dataclass(kw_only=True)
class ItemRef(TraceMeta):
    """A trace that can be loaded later: ``reader`` names the module, ``locator`` is JSON-like.

    ``source`` is the local path of the file that holds the waveform; hashes use only its base name
    so that a plan is recognised again after the service re-downloads sources to another directory.
    """

    reader: str
    source: str
    locator: dict[str, Any]

    def sort_key(self) -> tuple[str, str, str]:
        import os

        return (self.reader, os.path.basename(self.source), self.trace_name)


@dataclass(kw_only=True)
class TraceRecord(TraceMeta):
    """A loaded trace: ``data`` is float32 (C, L), channels first in ``component_order``."""

    data: np.ndarray
    component_order: str

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[-1])


def clean_float(value: Any) -> float | None:
    """Parse a number from the text/number soup of real metadata ('None', 'nan', '', 1.0) -> float | None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        text = value.strip().strip("[]").strip()
        if text == "" or text.lower() in ("none", "nan", "null", "na", "n/a"):
            return None
        try:
            value = float(text.split()[0])
        except ValueError:
            return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def clean_str(value: Any) -> str | None:
    """Parse text metadata: '', 'None', 'nan' and NaN become None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, float) and math.isnan(value):
        return None
    text = str(value).strip()
    if text == "" or text.lower() in ("none", "nan", "null"):
        return None
    return text


def parse_float_list(value: Any) -> tuple[float, ...] | None:
    """Parse STEAD's bracketed per-component strings like '[ 56.79  55.40  47.40]' or '[[ 2896.]]'."""
    if value is None:
        return None
    if isinstance(value, np.ndarray | list | tuple):
        vals = [clean_float(v) for v in np.asarray(value, dtype=object).ravel()]
    else:
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        text = str(value).replace("[", " ").replace("]", " ").replace(",", " ").strip()
        if not text or text.lower() in ("none", "nan"):
            return None
        vals = [clean_float(t) for t in text.split()]
    vals_ok = [v for v in vals if v is not None]
    return tuple(vals_ok) if vals_ok else None


def parse_time(value: Any) -> UTCDateTime | None:
    """Parse a timestamp (ISO text with ' ' or 'T', or UTCDateTime); unparseable -> None."""
    if value is None or isinstance(value, UTCDateTime):
        return value
    text = clean_str(value)
    if text is None:
        return None
    try:
        return UTCDateTime(text)
    except (ValueError, TypeError):
        return None
