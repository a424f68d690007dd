"""Published datasets: a dataset exists exactly when its catalog row is published; its figures are its manifest's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from quakestack.data.manifest import load_manifest, manifest_size
from quakestack.data.shards import read_shard
from quakestack.errors import InvalidArgument, NotFound
from quakestack.layout import dataset_prefix, manifest_key
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.pagination import PageRequest
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
    size = manifest_size(manifest)
    return data_pb2.Dataset(
        name=manifest.get("name", ""), version=int(manifest.get("version", 0)), manifest_sha256=sha256,
        splits=splits, window_samples=int(manifest.get("window_length_samples", 0)),
        sampling_rate_hz=float(manifest.get("sampling_rate", 0.0)),
        component_order=manifest.get("component_order", ""), size_bytes=int(size),
        create_time=timestamp_from_iso(manifest.get("created_at")), description=manifest.get("description", ""),
    )


def get(store: ObjectStore, catalog: DatasetCatalog, name: str) -> data_pb2.Dataset:
    return summary(*load_manifest(store, catalog, name))


def describe(store: ObjectStore, catalog: DatasetCatalog, name: str) -> data_pb2.DescribeDatasetResponse:
    manifest, sha = load_manifest(store, catalog, name)
    return data_pb2.DescribeDatasetResponse(dataset=summary(manifest, sha), manifest=struct_from_dict(manifest))


def list_datasets(store: ObjectStore, catalog: DatasetCatalog,
                  page: PageRequest) -> tuple[list[data_pb2.Dataset], str]:
    """One page of published datasets by name (keyset on the catalog), and the next page's token. A dataset
    deleted between the query and its manifest's read is left out: a page may then hold fewer than page_size
    datasets while a token follows, as AIP-158 allows."""
    after = str(page.after[0]) if page.after else None
    names, more = catalog.names(after, page.size)
    out = []
    for name in names:
        try:
            out.append(get(store, catalog, name))
        except NotFound:
            continue
    return out, page.token_after((names[-1],)) if more and names else ""


def delete(store: ObjectStore, catalog: DatasetCatalog, name: str) -> int:
    """The catalog row first (the dataset stops existing at once), then the manifest and everything under its
    prefix."""
    catalog.delete(name)
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


def sample(store: ObjectStore, catalog: DatasetCatalog, name: str, split: str, count: int,
           cache_dir: str | Path) -> data_pb2.SampleDatasetResponse:
    """The first `count` windows of a split (a reproducible look at a dataset), read from its first shards.

    Shards come through the same sha256-checked cache as training, so a sample never shows bytes the
    manifest does not vouch for.
    """
    count = count or 4
    if not 1 <= count <= MAX_SAMPLES:
        raise InvalidArgument(f"count must be in [1, {MAX_SAMPLES}], got {count}")
    manifest, sha = load_manifest(store, catalog, name)
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
