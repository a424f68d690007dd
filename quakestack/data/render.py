"""Rendering one shard: load its items through their readers, preprocess, cut windows, write the files.

``render_shard`` is a top-level function of picklable arguments (for a ProcessPoolExecutor); a
shard already on disk with the same plan_sha256 is reused, and a bad trace is skipped and counted.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from quakestack.digests import file_sha256

from . import manifest as mf
from .plan import ShardPlan
from .preprocess import GAP_FILLED, preprocess
from .readers import get_reader, load_items
from .records import Skipped, TraceRecord
from .shards import METADATA, WAVEFORMS, shard_plan_sha256, write_shard
from .spec import DatasetSpec
from .windows import cut_window

RESULT_ATTR = "quakestack_shard_result"


@dataclass
class ShardResult:
    """What rendering one shard produced; JSON-able via ``to_dict`` / ``from_dict`` for job state."""

    key: str
    split: str
    index: int
    plan_sha256: str
    count: int
    category_counts: dict[str, int]
    magnitude_histogram: list[int]
    skipped: dict[str, int]
    skipped_examples: list[str]
    files: dict[str, str]
    sha256: dict[str, str]
    reused: bool = False
    sizes: dict[str, int] = field(default_factory=dict)  # bytes per file (manifest and dataset size)
    gap_filled_windows: int = 0  # windows with samples a gap policy filled (each window's count is in metadata)
    gap_filled_samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShardResult:
        return cls(**d)


def _row(rec: TraceRecord, split: str) -> dict[str, Any]:
    net, sta, loc = (rec.station.split(".") + ["", "", ""])[:3]
    return {
        "trace_sampling_rate_hz": float(rec.sampling_rate or 0.0),
        "trace_p_arrival_sample": rec.p_arrival_sample,
        "trace_s_arrival_sample": rec.s_arrival_sample,
        "source_magnitude": rec.magnitude,
        "source_magnitude_type": rec.magnitude_type,
        "source_id": rec.event_id,
        "split": split,
        "trace_category": rec.category,
        "station_network_code": net,
        "station_code": sta,
        "station_location_code": loc,
        "path_p_travel_sec": rec.p_travel_s,
        "path_ep_distance_km": rec.distance_km,
        "path_back_azimuth_deg": rec.back_azimuth,
        "source_depth_km": rec.depth_km,
        "trace_snr_db": rec.snr_db,
        "trace_start_time": None if rec.start_time is None else str(rec.start_time),
        "source_origin_time": None if rec.origin_time is None else str(rec.origin_time),
        "source_latitude_deg": rec.source_latitude,
        "source_longitude_deg": rec.source_longitude,
        "location_cluster": int(rec.location_cluster),
        "trace_source_name": rec.trace_name,
        "trace_gap_filled_samples": int(rec.extra.get(GAP_FILLED, 0)),
    }


def _reuse(plan: ShardPlan, directory: str) -> ShardResult | None:
    if shard_plan_sha256(directory) != plan.plan_sha256:
        return None
    files = {WAVEFORMS: os.path.join(directory, WAVEFORMS), METADATA: os.path.join(directory, METADATA)}
    try:
        with h5py.File(files[WAVEFORMS], "r") as f:
            stored = json.loads(f.attrs[RESULT_ATTR])
    except (OSError, KeyError, ValueError):
        return None
    return ShardResult(**stored, files=files, sha256={k: file_sha256(p) for k, p in files.items()}, reused=True,
                       sizes={k: os.path.getsize(p) for k, p in files.items()})


def render_shard(plan: ShardPlan, spec: DatasetSpec, out_dir: str, resume: bool = True) -> ShardResult:
    """Load, preprocess and window a shard's items and write ``<out_dir>/<plan.key>/``.

    With ``resume``, a shard already on disk with the same plan_sha256 is reused, not rewritten.
    A bad trace is skipped and counted, never fatal.
    """
    directory = os.path.join(out_dir, plan.key)
    if resume:
        done = _reuse(plan, directory)
        if done is not None:
            return done
    w = spec.window
    n_comp = len(spec.preprocess.component_order)
    block = np.empty((len(plan.items), n_comp, w.n_samples), dtype=np.float32)
    rows: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    cats: Counter[str] = Counter()
    hist = [0] * mf.MAGNITUDE_BIN_COUNT
    filled = [0, 0]  # windows, samples
    for item, got in zip(plan.items, load_items(plan.items), strict=True):
        if not isinstance(got, Skipped):
            got.extra.setdefault("source_file", os.path.basename(item.source))
            got = preprocess(got, spec.preprocess, w.sampling_rate)
        if not isinstance(got, Skipped):
            got = cut_window(got, w, seed=spec.seed, default_offset_s=get_reader(item.reader).default_p_offset_s)
        if isinstance(got, Skipped):
            skipped.append(got)
            continue
        block[len(rows)] = got.data
        rows.append(_row(got, plan.split))
        cats[got.category] += 1
        if got.extra.get(GAP_FILLED):
            filled[0] += 1
            filled[1] += int(got.extra[GAP_FILLED])
        if got.magnitude is not None and not got.is_noise:
            hist[mf.magnitude_bin(got.magnitude)] += 1
    summary = {
        "key": plan.key,
        "split": plan.split,
        "index": plan.index,
        "plan_sha256": plan.plan_sha256,
        "count": len(rows),
        "category_counts": dict(sorted(cats.items())),
        "magnitude_histogram": hist,
        "skipped": dict(sorted(Counter(s.reason for s in skipped).items())),
        "skipped_examples": [s.message for s in skipped[:20]],
        "gap_filled_windows": filled[0],
        "gap_filled_samples": filled[1],
    }
    written = write_shard(
        directory,
        block[: len(rows)],
        rows,
        spec.preprocess.component_order,
        w.sampling_rate,
        dtype=spec.dtype,
        plan_sha256=plan.plan_sha256,
        extra_attrs={RESULT_ATTR: json.dumps(summary, sort_keys=True)},
    )
    sizes = {k: os.path.getsize(p) for k, p in written["files"].items()}
    return ShardResult(**summary, files=written["files"], sha256=written["sha256"], sizes=sizes)
