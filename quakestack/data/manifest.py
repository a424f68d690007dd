"""The dataset manifest: everything a trainer or auditor needs, as deterministic JSON.

Written last, then published in the metadata store's dataset catalog (a dataset exists from that
commit). Keys are sorted and floats are plain, so two runs of the same request give the same text
except ``created_at``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

from quakestack.errors import FailedPrecondition, NotFound
from quakestack.layout import validate_name
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.protoconv import iso_from_seconds
from quakestack.storage import ObjectStore

MANIFEST_VERSION = 1
MAGNITUDE_BIN_WIDTH = 0.5
MAGNITUDE_BIN_MIN = -2.0
MAGNITUDE_BIN_COUNT = 24  # -2.0 .. 10.0


def magnitude_bin(m: float) -> int:
    """Index of the histogram bin holding magnitude ``m`` (clipped to the outer bins)."""
    i = int((m - MAGNITUDE_BIN_MIN) // MAGNITUDE_BIN_WIDTH)
    return min(max(i, 0), MAGNITUDE_BIN_COUNT - 1)


def magnitude_bin_edges() -> list[float]:
    return [MAGNITUDE_BIN_MIN + i * MAGNITUDE_BIN_WIDTH for i in range(MAGNITUDE_BIN_COUNT + 1)]


def now_iso() -> str:
    """The manifest's `created_at`: to the second, so it is the only part of two runs' text that differs."""
    return iso_from_seconds(time.time(), "seconds")


def manifest_json(manifest: dict[str, Any]) -> str:
    """Deterministic JSON text (sorted keys, 2-space indent, trailing newline)."""
    return json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False) + "\n"


def write_manifest(path: str, manifest: dict[str, Any]) -> str:
    """Write the manifest atomically (temporary name + rename) and return its path."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".part"
    with open(tmp, "w") as fh:
        fh.write(manifest_json(manifest))
    os.replace(tmp, path)
    return path


def read_manifest(path: str) -> dict[str, Any]:
    with open(path) as fh:
        return json.load(fh)


def load_manifest(store: ObjectStore, catalog: DatasetCatalog, dataset: str) -> tuple[dict[str, Any], str]:
    """A published dataset's manifest and the sha256 of its stored bytes (the dataset's lineage id).

    NOT_FOUND while the dataset is not published (running, cancelled or deleted); INVALID_ARGUMENT for a
    name that cannot be a dataset; FAILED_PRECONDITION when the stored manifest is not the one published.
    """
    row = catalog.get(validate_name(dataset, "dataset name"))
    try:
        raw = store.get_bytes(row.manifest_key)
    except NotFound:
        raise NotFound(f"dataset {dataset!r} not found") from None
    sha = hashlib.sha256(raw).hexdigest()
    if sha != row.manifest_sha256:
        raise FailedPrecondition(f"dataset {dataset!r}: its stored manifest (sha256 {sha}) is not the one published "
                                 f"({row.manifest_sha256}); it was changed outside quakestack")
    return json.loads(raw), sha


def manifest_size(manifest: dict[str, Any]) -> int:
    """Bytes of a dataset's shards, as its manifest records them."""
    size = manifest.get("size_bytes")
    if size is None:
        size = sum(int(f.get("size") or 0) for sh in manifest.get("shards", []) for f in sh["files"].values())
    return int(size)


def manifest_windows(manifest: dict[str, Any]) -> int:
    return sum(int(s.get("count", 0)) for s in (manifest.get("splits") or {}).values())
