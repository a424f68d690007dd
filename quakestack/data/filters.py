"""Metadata filters applied at planning time (no waveform reads).

Choice: noise items have no magnitude, distance or SNR, so by default they PASS the magnitude,
distance and SNR filters (a detection dataset filtered to "ml >= 2" still needs its noise class);
set ``noise_passes_event_filters=False`` to drop them instead, or ``categories`` to choose classes.
An event item that lacks a label a filter needs (e.g. no magnitude with a magnitude range) is dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .records import ItemRef


@dataclass
class FilterSpec:
    """Which items to keep; None / empty means no constraint."""

    magnitude_types: list[str] | None = None  # case-insensitive, e.g. ["ml", "md"]
    min_magnitude: float | None = None
    max_magnitude: float | None = None
    min_snr_db: float | None = None
    min_distance_km: float | None = None
    max_distance_km: float | None = None
    categories: list[str] | None = None  # e.g. ["earthquake", "noise"]
    max_items: int | None = None  # seeded random subset, original order kept
    noise_passes_event_filters: bool = True

    def __post_init__(self) -> None:
        for lo, hi, what in (
            (self.min_magnitude, self.max_magnitude, "magnitude"),
            (self.min_distance_km, self.max_distance_km, "distance"),
        ):
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"min {what} {lo} is above max {what} {hi}")
        if self.max_items is not None and self.max_items < 0:
            raise ValueError("max_items must be >= 0")


def _reject(item: ItemRef, spec: FilterSpec, types: set[str] | None) -> str | None:
    if spec.categories and item.category not in {c.lower() for c in spec.categories}:
        return "category not selected"
    if item.is_noise and spec.noise_passes_event_filters:
        return None
    checks = (
        (
            types is not None,
            lambda: (item.magnitude_type or "").lower() not in types,
            "magnitude type not selected",
        ),
        (
            spec.min_magnitude is not None or spec.max_magnitude is not None,
            lambda: item.magnitude is None,
            "no magnitude",
        ),
        (
            spec.min_magnitude is not None,
            lambda: item.magnitude < spec.min_magnitude,
            "magnitude below minimum",
        ),
        (
            spec.max_magnitude is not None,
            lambda: item.magnitude > spec.max_magnitude,
            "magnitude above maximum",
        ),
        (
            spec.min_snr_db is not None,
            lambda: item.snr_db is None or item.snr_db < spec.min_snr_db,
            "SNR below minimum or unknown",
        ),
        (
            spec.min_distance_km is not None or spec.max_distance_km is not None,
            lambda: item.distance_km is None,
            "no distance",
        ),
        (
            spec.min_distance_km is not None,
            lambda: item.distance_km < spec.min_distance_km,
            "distance below minimum",
        ),
        (
            spec.max_distance_km is not None,
            lambda: item.distance_km > spec.max_distance_km,
            "distance above maximum",
        ),
    )
    for active, failed, reason in checks:
        if active and failed():
            return reason
    return None


def apply_filters(items: Sequence[ItemRef], spec: FilterSpec, seed: int = 0) -> tuple[list[ItemRef], dict[str, int]]:
    """Return the kept items (input order) and the number dropped per reason."""
    types = {t.lower() for t in spec.magnitude_types} if spec.magnitude_types else None
    kept: list[ItemRef] = []
    dropped: Counter[str] = Counter()
    for item in items:
        reason = _reject(item, spec, types)
        if reason is None:
            kept.append(item)
        else:
            dropped[f"filtered: {reason}"] += 1
    if spec.max_items is not None and len(kept) > spec.max_items:
        order = sorted(range(len(kept)), key=lambda i: kept[i].sort_key())
        chosen = np.random.default_rng(seed).choice(len(kept), size=spec.max_items, replace=False)
        keep_idx = sorted(order[i] for i in chosen)
        dropped["filtered: over max_items"] += len(kept) - spec.max_items
        kept = [kept[i] for i in keep_idx]
    return kept, dict(dropped)
