"""Published datasets, read from their manifests: a dataset exists exactly when its manifest does."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from quakestack.errors import NotFound
from quakestack.storage import ObjectStore, validate_name
from quakestack.v1 import data_pb2

PREFIX = "datasets/"


def manifest_key(name: str) -> str:
    return f"{PREFIX}{name}/manifest.json"


def load_manifest(store: ObjectStore, name: str) -> tuple[dict[str, Any], str]:
    """(manifest, sha256 of its stored bytes); NOT_FOUND when the dataset does not exist."""
    validate_name(name, "dataset name")
    try:
        raw = store.get_bytes(manifest_key(name))
    except NotFound:
        raise NotFound(f"dataset {name!r} not found") from None
    return json.loads(raw), hashlib.sha256(raw).hexdigest()


def _timestamp(text: str | None) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    if text:
        ts.FromDatetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
    return ts


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
        create_time=_timestamp(manifest.get("created_at")), description=manifest.get("description", ""),
    )


def get(store: ObjectStore, name: str) -> data_pb2.Dataset:
    return summary(*load_manifest(store, name))


def describe(store: ObjectStore, name: str) -> data_pb2.DescribeDatasetResponse:
    manifest, sha = load_manifest(store, name)
    struct = struct_pb2.Struct()
    struct.update(manifest)
    return data_pb2.DescribeDatasetResponse(dataset=summary(manifest, sha), manifest=struct)


def list_datasets(store: ObjectStore, limit: int) -> list[data_pb2.Dataset]:
    """Datasets by name; folders without a manifest (running, cancelled, half-deleted) are not datasets."""
    out = []
    for name in store.list_dirs(PREFIX):
        if len(out) >= limit:
            break
        try:
            out.append(get(store, name))
        except NotFound:
            continue
    return out


def delete(store: ObjectStore, name: str) -> int:
    """Manifest first (the dataset stops existing at once), then everything under its prefix."""
    load_manifest(store, name)
    store.delete(manifest_key(name))
    return 1 + store.delete_prefix(f"{PREFIX}{name}/")
