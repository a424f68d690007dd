"""The engine the data service calls: plan a dataset cheaply, then render it shard by shard.

``plan_dataset`` reads metadata only (list_items), filters, clusters, splits and deals items to
shards deterministically; each :class:`ShardPlan` carries a ``plan_sha256`` over its inputs and the
rendering parameters, so a finished shard is recognised and a crashed job resumes shard by shard.
``render_shard`` is a top-level function of picklable arguments (for a ProcessPoolExecutor).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
from obspy import UTCDateTime

from quakestack.layout import MANIFEST_FILE, shard_dir

from . import manifest as mf
from .clusters import assign_clusters
from .filters import FilterSpec, apply_filters
from .preprocess import NORMALIZATIONS, PreprocessSpec, preprocess
from .readers import get_reader, load_items
from .records import DataSourceError, ItemRef, Skipped, TraceRecord
from .shards import DTYPES, METADATA, WAVEFORMS, shard_plan_sha256, write_shard
from .split import SPLITS, SplitSpec, assign_splits
from .windows import DEFAULT_CATALOG_P_OFFSET_S, WindowSpec, cut_window

FORMAT_VERSION = 1
RESULT_ATTR = "quakestack_shard_result"
SOURCE_FORMATS = ("stead", "seisbench", "waveform_catalog")
CATALOG_FORMATS = ("quakeml", "nordic", "csv")


@dataclass
class SourceSpec:
    """One source on LOCAL disk (the service downloads from object storage first).

    - stead: ``paths`` = HDF5 files; ``metadata_paths`` = their CSVs in the same order (default:
      the same path with ``.csv``);
    - seisbench: ``paths`` = dataset directories (chunked or not);
    - waveform_catalog: ``paths`` = waveform files ObsPy reads; ``catalog_path`` + ``catalog_format``.
    """

    format: str
    paths: list[str]
    metadata_paths: list[str] = field(default_factory=list)
    catalog_path: str | None = None
    catalog_format: str = "quakeml"
    name: str = ""

    def __post_init__(self) -> None:
        if self.format not in SOURCE_FORMATS:
            raise ValueError(f"source format must be one of {SOURCE_FORMATS}, got {self.format!r}")
        if not self.paths:
            raise ValueError(f"{self.format} source needs at least one path")
        if self.format == "waveform_catalog":
            if not self.catalog_path:
                raise ValueError("waveform_catalog source needs catalog_path")
            if self.catalog_format.lower() not in CATALOG_FORMATS:
                raise ValueError(f"catalog_format must be one of {CATALOG_FORMATS}, got {self.catalog_format!r}")
        if self.format == "stead" and self.metadata_paths and len(self.metadata_paths) != len(self.paths):
            raise ValueError("stead source: metadata_paths must pair one CSV with each HDF5 path")

    def describe(self) -> dict[str, Any]:
        """Portable description (base names only: local download paths are not part of identity)."""
        return {
            "format": self.format,
            "name": self.name,
            "files": [os.path.basename(p.rstrip("/")) for p in self.paths],
            "metadata_files": [os.path.basename(p) for p in self.metadata_paths],
            "catalog": os.path.basename(self.catalog_path) if self.catalog_path else None,
            "catalog_format": self.catalog_format if self.format == "waveform_catalog" else None,
        }


@dataclass
class DatasetSpec:
    """Everything a dataset request fixes."""

    name: str
    sources: list[SourceSpec]
    window: WindowSpec = field(default_factory=WindowSpec)
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    filters: FilterSpec = field(default_factory=FilterSpec)
    split: SplitSpec = field(default_factory=SplitSpec)
    shard_size: int = 1000
    dtype: str = "float32"
    seed: int = 0
    normalization: str = "none"  # recorded for the trainer, never applied to stored windows
    location_clusters: int = 0  # k-means clusters over epicentres; 0 = off
    edge_pad_s: float = 5.0  # extra data read around continuous-data windows (filter edges)
    noise_margin_s: float = 60.0  # continuous data: noise windows keep this far from any pick
    max_noise_per_stream: int | None = None
    noise_windows_per_event: int | None = None  # continuous data: cap noise per stream at k x its events
    description: str = ""

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("a dataset needs at least one source")
        if self.shard_size <= 0:
            raise ValueError(f"shard_size must be positive, got {self.shard_size}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")

    def parameters(self) -> dict[str, Any]:
        """The request's parameters as plain JSON-able data (sources described by base names)."""
        return {
            "window": dataclasses.asdict(self.window),
            "preprocess": dataclasses.asdict(self.preprocess),
            "filters": dataclasses.asdict(self.filters),
            "split": dataclasses.asdict(self.split),
            "shard_size": self.shard_size,
            "dtype": self.dtype,
            "seed": self.seed,
            "normalization": self.normalization,
            "location_clusters": self.location_clusters,
            "edge_pad_s": self.edge_pad_s,
            "noise_margin_s": self.noise_margin_s,
            "max_noise_per_stream": self.max_noise_per_stream,
            "noise_windows_per_event": self.noise_windows_per_event,
        }

    def render_parameters(self) -> dict[str, Any]:
        """The parameters that change a shard's bytes (part of every plan_sha256)."""
        return {
            "format_version": FORMAT_VERSION,
            "window": dataclasses.asdict(self.window),
            "preprocess": dataclasses.asdict(self.preprocess),
            "dtype": self.dtype,
            "seed": self.seed,
        }


@dataclass
class ShardPlan:
    """The items of one shard, in the order they will be written, and the hash identifying it."""

    split: str
    index: int
    items: list[ItemRef]
    plan_sha256: str

    @property
    def key(self) -> str:
        """Relative location: ``shards/<split>/<nnnnn>`` (object key prefix and local directory)."""
        return shard_dir(self.split, self.index)


@dataclass
class DatasetPlan:
    """The whole dataset before any waveform is read."""

    name: str
    shards: list[ShardPlan]
    skipped: list[Skipped]  # found while listing (bad rows, picks matching no waveform...)
    filtered: dict[str, int]  # dropped by filters, per reason
    n_listed: int
    n_selected: int

    @property
    def skipped_counts(self) -> dict[str, int]:
        return dict(Counter(s.reason for s in self.skipped))


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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShardResult:
        return cls(**d)


# ------------------------------------------------------------------------------------------ planning
def _list_source(src: SourceSpec, spec: DatasetSpec) -> list[ItemRef | Skipped]:
    reader = get_reader(src.format)
    if src.format == "stead":
        csvs = src.metadata_paths or [os.path.splitext(p)[0] + ".csv" for p in src.paths]
        return reader.list_items(list(zip(src.paths, csvs, strict=True)))
    if src.format == "seisbench":
        return reader.list_items(src.paths)
    w = spec.window
    lo, hi = w.offset_bounds_s(DEFAULT_CATALOG_P_OFFSET_S)  # type: ignore[misc]
    return reader.list_items(
        src.paths,
        src.catalog_path,
        src.catalog_format,
        pre_s=hi + spec.edge_pad_s,
        post_s=w.length_s - lo + spec.edge_pad_s,
        noise_length_s=(w.length_s + 2 * spec.edge_pad_s) if w.include_noise else None,
        noise_margin_s=spec.noise_margin_s,
        max_noise_per_stream=spec.max_noise_per_stream,
        noise_per_event=spec.noise_windows_per_event,
        window_s=w.length_s,
    )


def _json_safe(value: Any) -> Any:
    if isinstance(value, UTCDateTime):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def item_fingerprint(item: ItemRef) -> dict[str, Any]:
    """What identifies an item's content: labels + locator, with file paths reduced to base names."""
    loc = dict(item.locator)
    if "files" in loc:
        loc["files"] = [os.path.basename(p) for p in loc["files"]]
    return _json_safe(
        {
            "reader": item.reader,
            "source": os.path.basename(item.source),
            "locator": loc,
            **item.label_fields(),
        }
    )


def _plan_hash(spec: DatasetSpec, split: str, index: int, items: Sequence[ItemRef]) -> str:
    payload = {
        "params": spec.render_parameters(),
        "split": split,
        "index": index,
        "items": [item_fingerprint(it) for it in items],
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def plan_dataset(spec: DatasetSpec) -> DatasetPlan:
    """List all sources (metadata only), filter, cluster, split and deal items to shards.

    Raises DataSourceError when a source cannot be used at all; bad rows and unmatched picks become
    ``plan.skipped``.
    """
    items: list[ItemRef] = []
    skipped: list[Skipped] = []
    for src in spec.sources:
        for x in _list_source(src, spec):
            (skipped if isinstance(x, Skipped) else items).append(x)  # type: ignore[arg-type]
    n_listed = len(items)
    filtered: Counter[str] = Counter()
    if not spec.window.include_noise:
        n0 = len(items)
        items = [it for it in items if not it.is_noise]
        if n0 - len(items):
            filtered["filtered: noise windows not requested"] += n0 - len(items)
    items, dropped = apply_filters(items, spec.filters, seed=spec.seed)
    filtered.update(dropped)
    if spec.location_clusters > 0:
        assign_clusters(items, spec.location_clusters, seed=spec.seed)
    names = assign_splits(items, spec.split, seed=spec.seed)
    shards: list[ShardPlan] = []
    for k, split in enumerate(SPLITS):
        members = sorted((it for it, s in zip(items, names, strict=True) if s == split), key=ItemRef.sort_key)
        if not members:
            continue
        perm = np.random.default_rng([spec.seed, k]).permutation(len(members))
        members = [members[i] for i in perm]
        for index, a in enumerate(range(0, len(members), spec.shard_size)):
            chunk = members[a : a + spec.shard_size]
            shards.append(ShardPlan(split, index, chunk, _plan_hash(spec, split, index, chunk)))
    return DatasetPlan(spec.name, shards, skipped, dict(filtered), n_listed, len(items))


# ----------------------------------------------------------------------------------------- rendering
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
    from quakestack.digests import file_sha256

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
    for item, got in zip(plan.items, load_items(plan.items), strict=True):
        if not isinstance(got, Skipped):
            got.extra.setdefault("source_file", os.path.basename(item.source))
            got = preprocess(got, spec.preprocess, w.sampling_rate)
        if not isinstance(got, Skipped):
            default = DEFAULT_CATALOG_P_OFFSET_S if item.reader == "waveform_catalog" else None
            got = cut_window(got, w, seed=spec.seed, default_offset_s=default)
        if isinstance(got, Skipped):
            skipped.append(got)
            continue
        block[len(rows)] = got.data
        rows.append(_row(got, plan.split))
        cats[got.category] += 1
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


# ------------------------------------------------------------------------------------------ manifest
def build_manifest(spec: DatasetSpec, plan: DatasetPlan, results: Sequence[ShardResult]) -> dict[str, Any]:
    """The manifest dict (see :mod:`quakestack.data.manifest`); ``results`` in any order."""
    by_key = {r.key: r for r in results}
    missing = [s.key for s in plan.shards if s.key not in by_key]
    if missing:
        raise ValueError(f"manifest needs every shard rendered; missing: {', '.join(missing[:5])}")
    splits: dict[str, dict[str, Any]] = {}
    hist = [0] * mf.MAGNITUDE_BIN_COUNT
    skipped: Counter[str] = Counter(plan.skipped_counts)
    categories: Counter[str] = Counter()
    shards = []
    for sp in plan.shards:
        r = by_key[sp.key]
        s = splits.setdefault(sp.split, {"count": 0, "shards": 0, "categories": Counter()})
        s["count"] += r.count
        s["shards"] += 1
        s["categories"].update(r.category_counts)
        categories.update(r.category_counts)
        skipped.update(r.skipped)
        hist = [a + b for a, b in zip(hist, r.magnitude_histogram, strict=True)]
        shards.append(
            {
                "key": r.key,
                "split": r.split,
                "index": r.index,
                "count": r.count,
                "plan_sha256": r.plan_sha256,
                "files": {
                    name: {"key": f"{r.key}/{name}", "sha256": r.sha256[name], "size": r.sizes.get(name)}
                    for name in sorted(r.sha256)
                },
            }
        )
    for s in splits.values():
        s["categories"] = dict(sorted(s["categories"].items()))
    written = sum(r.count for r in results)
    return {
        "version": mf.MANIFEST_VERSION,
        "format_version": FORMAT_VERSION,
        "name": spec.name,
        "description": spec.description,
        "created_at": mf.now_iso(),
        "source": [src.describe() for src in spec.sources],
        "parameters": _json_safe(spec.parameters()),
        "sampling_rate": spec.window.sampling_rate,
        "window_length_s": spec.window.length_s,
        "window_length_samples": spec.window.n_samples,
        "component_order": spec.preprocess.component_order,
        "dimension_order": "NCW",
        "dtype": spec.dtype,
        "normalization": spec.normalization,
        "size_bytes": sum(sum(r.sizes.values()) for r in results),
        "splits": splits,
        "categories": dict(sorted(categories.items())),
        "magnitude_histogram": {"bin_edges": mf.magnitude_bin_edges(), "counts": hist},
        "shards": shards,
        "skipped": dict(sorted(skipped.items())),
        "filtered": dict(sorted(plan.filtered.items())),
        "counts": {
            "listed": plan.n_listed,
            "selected": plan.n_selected,
            "written": written,
            "skipped": sum(skipped.values()),
        },
    }


def run_dataset(spec: DatasetSpec, out_dir: str, max_workers: int = 1, resume: bool = True) -> dict[str, Any]:
    """Plan, render every shard (in worker processes if ``max_workers`` > 1) and write manifest.json last."""
    plan = plan_dataset(spec)
    if max_workers > 1 and len(plan.shards) > 1:
        with ProcessPoolExecutor(max_workers=max_workers) as pool:
            futures = [pool.submit(render_shard, sp, spec, out_dir, resume) for sp in plan.shards]
            results = [f.result() for f in futures]
    else:
        results = [render_shard(sp, spec, out_dir, resume) for sp in plan.shards]
    manifest = build_manifest(spec, plan, results)
    mf.write_manifest(os.path.join(out_dir, MANIFEST_FILE), manifest)
    return manifest


__all__ = [
    "DataSourceError",
    "DatasetPlan",
    "DatasetSpec",
    "ShardPlan",
    "ShardResult",
    "SourceSpec",
    "build_manifest",
    "plan_dataset",
    "render_shard",
    "run_dataset",
]
