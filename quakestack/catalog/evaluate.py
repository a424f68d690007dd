"""A catalog against a reference catalog (QuakeML or CSV): matches by time and distance, figures and plots.

Matching is one-to-one and greedy by origin-time difference over the pairs within both tolerances,
so one reference event never counts two predicted ones.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from obspy import UTCDateTime

from quakestack.errors import InvalidArgument
from quakestack.figures import figure_png


@dataclass(frozen=True)
class ReferenceEvent:
    origin_time: float
    latitude: float
    longitude: float
    depth_km: float | None = None
    magnitude: float | None = None


def epicentral_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, R = 6371 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def read_reference(data: bytes, name: str = "") -> list[ReferenceEvent]:
    """QuakeML (anything obspy.read_events reads) or CSV with origin_time, latitude, longitude[, depth_km,
    magnitude] columns (rows repeating an event_id count once)."""
    head = data[:200].lstrip()
    if head.startswith(b"<"):
        import obspy

        try:
            catalog = obspy.read_events(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - ObsPy raises many kinds for unreadable files
            raise InvalidArgument(f"reference catalog {name}: not readable by ObsPy ({exc})") from None
        out = []
        for ev in catalog:
            o = ev.preferred_origin() or (ev.origins[0] if ev.origins else None)
            if o is None:
                continue
            m = ev.preferred_magnitude() or (ev.magnitudes[0] if ev.magnitudes else None)
            out.append(ReferenceEvent(o.time.timestamp, o.latitude, o.longitude,
                                      None if o.depth is None else o.depth / 1000.0, None if m is None else m.mag))
        return out
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8", errors="replace"))))
    needed = {"origin_time", "latitude", "longitude"}
    if not rows or not needed <= set(rows[0]):
        raise InvalidArgument(f"reference catalog {name}: a CSV needs columns {', '.join(sorted(needed))}")
    seen, out = set(), []
    for row in rows:
        key = row.get("event_id") or (row["origin_time"], row["latitude"], row["longitude"])
        if key in seen:
            continue
        seen.add(key)
        mag = row.get("magnitude")
        depth = row.get("depth_km")
        out.append(ReferenceEvent(UTCDateTime(row["origin_time"]).timestamp, float(row["latitude"]),
                                  float(row["longitude"]), float(depth) if depth else None,
                                  float(mag) if mag else None))
    return out


def match_events(predicted: Sequence, reference: Sequence[ReferenceEvent], time_tolerance_s: float = 2.0,
                 distance_tolerance_km: float = 10.0) -> list[tuple[int, int]]:
    """(predicted index, reference index) pairs."""
    pairs = []
    for i, p in enumerate(predicted):
        for j, r in enumerate(reference):
            dt = abs(p.origin_time - r.origin_time)
            if dt <= time_tolerance_s and epicentral_km(p.latitude, p.longitude, r.latitude,
                                                        r.longitude) <= distance_tolerance_km:
                pairs.append((dt, i, j))
    used_p, used_r, out = set(), set(), []
    for _dt, i, j in sorted(pairs):
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            out.append((i, j))
    return sorted(out)


def evaluate_catalog(predicted: Sequence, reference: Sequence[ReferenceEvent], time_tolerance_s: float = 2.0,
                     distance_tolerance_km: float = 10.0) -> dict:
    """Precision, recall, origin-time and epicentral errors, magnitude bias and RMSE of the matches."""
    if time_tolerance_s <= 0 or distance_tolerance_km <= 0:
        raise InvalidArgument("time_tolerance_s and distance_tolerance_km must be positive")
    matches = match_events(predicted, reference, time_tolerance_s, distance_tolerance_km)
    dt = np.array([predicted[i].origin_time - reference[j].origin_time for i, j in matches])
    dx = np.array([epicentral_km(predicted[i].latitude, predicted[i].longitude, reference[j].latitude,
                                 reference[j].longitude) for i, j in matches])
    dm = np.array([predicted[i].magnitude - reference[j].magnitude for i, j in matches
                   if predicted[i].magnitude is not None and reference[j].magnitude is not None])
    n = len(matches)

    def median(a: np.ndarray) -> float:
        return float(np.median(a)) if a.size else float("nan")

    return {
        "predicted": len(predicted), "reference": len(reference), "matched": n,
        "precision": n / len(predicted) if predicted else 0.0, "recall": n / len(reference) if reference else 0.0,
        "time_tolerance_s": time_tolerance_s, "distance_tolerance_km": distance_tolerance_km,
        "origin_time_error_median_s": median(np.abs(dt)), "origin_time_error_mean_s": float(dt.mean()) if n else
        float("nan"), "epicentral_error_median_km": median(dx), "epicentral_error_max_km": float(dx.max()) if n
        else float("nan"), "magnitude_matched": int(dm.size), "magnitude_bias": float(dm.mean()) if dm.size else
        float("nan"), "magnitude_rmse": float(np.sqrt(np.mean(dm**2))) if dm.size else float("nan"),
    }


def evaluation_plots(predicted: Sequence, reference: Sequence[ReferenceEvent], stations: Sequence,
                     matches: Sequence[tuple[int, int]]) -> dict[str, bytes]:
    """event_map.png (stations, reference and predicted epicentres, matches joined) and
    magnitudes.png (predicted vs reference magnitude of the matches)."""
    import matplotlib.pyplot as plt  # headless: quakestack.figures chose the Agg backend

    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter([s.longitude for s in stations], [s.latitude for s in stations], marker="^", c="k", label="stations")
    ax.scatter([r.longitude for r in reference], [r.latitude for r in reference], marker="o", facecolors="none",
               edgecolors="tab:blue", s=60, label="reference")
    ax.scatter([p.longitude for p in predicted], [p.latitude for p in predicted], marker="x", c="tab:red",
               label="predicted")
    for i, j in matches:
        ax.plot([predicted[i].longitude, reference[j].longitude], [predicted[i].latitude, reference[j].latitude],
                c="gray", lw=0.8)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.legend()
    ax.set_title(f"{len(matches)} matched of {len(reference)} reference, {len(predicted)} predicted")
    event_map = figure_png(fig)
    fig, ax = plt.subplots(figsize=(5, 5))
    pairs = [(reference[j].magnitude, predicted[i].magnitude) for i, j in matches
             if reference[j].magnitude is not None and predicted[i].magnitude is not None]
    if pairs:
        ref, pred = np.array(pairs).T
        ax.scatter(ref, pred)
        lo, hi = float(min(ref.min(), pred.min())) - 0.2, float(max(ref.max(), pred.max())) + 0.2
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("reference magnitude")
    ax.set_ylabel("network magnitude")
    return {"event_map.png": event_map, "magnitudes.png": figure_png(fig)}
