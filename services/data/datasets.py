"""Published datasets, read from their manifests: a dataset exists exactly when its manifest does."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from quakestack.data.manifest import load_manifest
from quakestack.data.shards import read_shard
from quakestack.errors import InvalidArgument, NotFound
from quakestack.layout import DATASETS_PREFIX, dataset_prefix, manifest_key
from quakestack.pagination import PageRequest, paginate
from quakestack.protoconv import struct_from_dict, timestamp_from_iso
from quakestack.storage import ObjectStore
from quakestack.training.data import fetch_shard
from quakestack.v1 import common_pb2, data_pb2


def summary(manifest: dict[str, Any], sha256: str) -> data_pb2.Dataset:
    """The Dataset message of a manifest."""
    splits = [
        data_pb2.SplitCounts(split=name, windows=int(s.get("count", 0)),
                             categories={k: int(v) for k, v in s.get("categories", {}).items()})
        for name, s in sorted(manifest.get("splits", {}).items(), key=lambda kv: ("train", "val", "test").index(kv[0])
                              if kv[0] in ("train", "val", "test") else 9)
    ]
    size = manifest.get("size_bytes")
    if size is None:
        size = sum(int(f.get("size") or 0) for sh in manifest.get("shards", []) for f in sh["files"].values())
    return data_pb2.Dataset(
        name=manifest.get("name", ""), version=int(manifest.get("version", 0)), manifest_sha256=sha256,
        splits=splits, window_samples=int(manifest.get("window_length_samples", 0)),
        sampling_rate_hz=float(manifest.get("sampling_rate", 0.0)),
        component_order=manifest.get("component_order", ""), size_bytes=int(size),
        create_time=timestamp_from_iso(manifest.get("created_at")), description=manifest.get("description", ""),
    )


def get(store: ObjectStore, name: str) -> data_pb2.Dataset:
    return summary(*load_manifest(store, name))


def describe(store: ObjectStore, name: str) -> data_pb2.DescribeDatasetResponse:
    manifest, sha = load_manifest(store, name)
    return data_pb2.DescribeDatasetResponse(dataset=summary(manifest, sha), manifest=struct_from_dict(manifest))


def list_datasets(store: ObjectStore, page: PageRequest) -> tuple[list[data_pb2.Dataset], str]:
    """One page of datasets by name, and the next page's token.

    Folders without a manifest (running, cancelled, half-deleted) are not datasets: the page is cut
    from the folder names first (one manifest read per name on the page, not per dataset stored),
    so a page may hold fewer than page_size datasets while a token follows, as AIP-158 allows.
    """
    names, token = paginate(store.list_dirs(DATASETS_PREFIX), page, lambda name: (name,))
    out = []
    for name in names:
        try:
            out.append(get(store, name))
        except NotFound:
            continue
    return out, token


def delete(store: ObjectStore, name: str) -> int:
    """Manifest first (the dataset stops existing at once), then everything under its prefix."""
    load_manifest(store, name)
    store.delete(manifest_key(name))
    return 1 + store.delete_prefix(dataset_prefix(name))


SPLITS = ("train", "val", "test")
MAX_SAMPLES = 16


def _number(row: dict[str, Any], column: str) -> float | None:
    """A label cell as a number, None where the shard has none (empty cell, NaN or a negative sample)."""
    value = row.get(column)
    number = math.nan if value is None else float(value)
    return None if math.isnan(number) or number < 0 else number


def _text(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    return "" if value is None or value != value else str(value)


def window_label(row: dict[str, Any]) -> data_pb2.WindowLabel:
    """The WindowLabel of one shard metadata row (SeisBench column names)."""
    magnitude = _number(row, "source_magnitude")
    return data_pb2.WindowLabel(
        trace_name=_text(row, "trace_name"), category=_text(row, "trace_category"),
        p_arrival_sample=_number(row, "trace_p_arrival_sample"),
        s_arrival_sample=_number(row, "trace_s_arrival_sample"),
        magnitude=magnitude, magnitude_type=_text(row, "source_magnitude_type") if magnitude is not None else "",
        station=".".join(_text(row, c) for c in ("station_network_code", "station_code", "station_location_code")))


def sample(store: ObjectStore, name: str, split: str, count: int,
           cache_dir: str | Path) -> data_pb2.SampleDatasetResponse:
    """The first `count` windows of a split (a reproducible look at a dataset), read from its first shards.

    Shards come through the same sha256-checked cache as training, so a sample never shows bytes the
    manifest does not vouch for.
    """
    count = count or 4
    if not 1 <= count <= MAX_SAMPLES:
        raise InvalidArgument(f"count must be in [1, {MAX_SAMPLES}], got {count}")
    manifest, sha = load_manifest(store, name)
    splits = manifest.get("splits", {})
    if split and split not in SPLITS:
        raise InvalidArgument(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    split = split or next((s for s in SPLITS if int(splits.get(s, {}).get("count", 0))), "")
    shards = [sh for sh in manifest.get("shards", []) if sh["split"] == split]
    if not shards:
        raise NotFound(f"dataset {name!r} has no windows in split {split or '(any)'!r}")
    blocks, labels = [], []
    for shard in shards:
        block, meta = read_shard(str(fetch_shard(store, name, shard, cache_dir, sha)), dtype="float32")
        take = min(count - sum(len(b) for b in blocks), len(block))
        blocks.append(block[:take])
        labels += [window_label(row) for row in meta.head(take).to_dict("records")]
        if sum(len(b) for b in blocks) >= count:
            break
    x = np.ascontiguousarray(np.concatenate(blocks), dtype="<f4")
    waveforms = common_pb2.Waveforms(data=x.tobytes(), shape=list(x.shape),
                                     sampling_rate_hz=float(manifest.get("sampling_rate", 0.0)),
                                     component_order=str(manifest.get("component_order", "")))
    return data_pb2.SampleDatasetResponse(waveforms=waveforms, labels=labels, split=split)
