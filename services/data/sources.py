"""Where source files come from: object storage (a key or a key prefix) or allow-listed local paths.

`check_location` runs in the RPC (cheap: stat/list, path checks) so that a missing key is NOT_FOUND
and a path outside QUAKESTACK_DATA_ALLOWED_DIRS is PERMISSION_DENIED before a job exists.
`fetch` runs in the job: objects are downloaded once into the cache (sha256-checked, reused when the
cached copy still has the stored digest) and the local paths feed the library's `SourceSpec`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from quakestack.data import SourceSpec
from quakestack.errors import InvalidArgument, NotFound
from quakestack.layout import SHA256_SIDECAR as SIDECAR
from quakestack.layout import sha256_sidecar_key
from quakestack.paths import allowed_local_path
from quakestack.storage import ObjectStore, validate_key
from quakestack.v1 import common_pb2, data_pb2
from services.data.requests import CATALOG_FORMATS, source_format

NOT_WAVEFORMS = (".csv", ".xml", ".qml", ".quakeml", ".json", ".txt", ".md", ".nordic", ".log", SIDECAR)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@dataclass
class Files:
    """One Location, resolved: local files (or a local directory) and, for objects, their keys."""

    display: str  # what messages name: the object key / prefix or the local path
    root: str  # local directory (prefix or folder) or file
    keys: list[str] = field(default_factory=list)  # objects to download; empty for local paths
    local: list[str] = field(default_factory=list)  # files on local disk once fetched
    is_dir: bool = False


def _local_files(root: str) -> list[str]:
    if os.path.isfile(root):
        return [root]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    return out


def check_location(store: ObjectStore, loc: common_pb2.Location, what: str, allowed_dirs: Sequence[str],
                   cache_dir: str) -> Files:
    """Resolve a Location without downloading: NOT_FOUND, PERMISSION_DENIED or INVALID_ARGUMENT."""
    kind = loc.WhichOneof("location")
    if kind == "local_path":
        path = loc.local_path
        allowed_local_path(path, allowed_dirs, f"{what}.local_path")
        files = _local_files(path)
        if not files:
            raise NotFound(f"{what}: {path} holds no files")
        return Files(display=path, root=path, local=files, is_dir=os.path.isdir(path))
    if kind != "object_key":
        raise InvalidArgument(f"{what}: object_key or local_path is required")
    key = validate_key(loc.object_key)
    cache_root = os.path.join(cache_dir, "objects")
    if not key.endswith("/") and store.exists(key):
        return Files(display=key, root=os.path.join(cache_root, key), keys=[key])
    prefix = key.rstrip("/") + "/"
    keys = [o.key for o in store.list(prefix) if not o.key.endswith(SIDECAR)]
    if not keys:
        raise NotFound(f"{what}: no object {key!r} and no objects under {prefix!r}")
    return Files(display=prefix, root=os.path.join(cache_root, prefix.rstrip("/")), keys=keys, is_dir=True)


def _key_lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def expected_sha256(store: ObjectStore, key: str) -> str | None:
    """The digest stored with an object (metadata), or in its `<key>.sha256` sidecar (streamed uploads)."""
    sha = store.stat(key).sha256
    if sha:
        return sha
    try:
        return store.get_bytes(sha256_sidecar_key(key)).decode().strip() or None
    except NotFound:
        return None


def fetch(store: ObjectStore, files: Files, cache_dir: str, on_file: Callable[[str, int], None]) -> None:
    """Download a Location's objects into the cache; a cached copy with the stored sha256 is reused."""
    cache_root = os.path.join(cache_dir, "objects")
    for key in files.keys:
        path = os.path.join(cache_root, key)
        with _key_lock(key):
            store.cached_file(key, path, expected_sha256(store, key))
        files.local.append(path)
        on_file(key, os.path.getsize(path))


def source_spec(source: data_pb2.DataSource, index: int, waveforms: Files, catalog: Files | None) -> SourceSpec:
    """The library's SourceSpec over fetched local files (pairs STEAD HDF5 files with their CSVs)."""
    fmt = source_format(source, index)
    name = f"sources[{index}]"
    if fmt == "seisbench":
        if not waveforms.is_dir:
            raise InvalidArgument(f"{name}: a SeisBench source is a directory / key prefix, got {waveforms.display}")
        return SourceSpec("seisbench", [waveforms.root], name=name)
    if fmt == "waveform_catalog":
        assert catalog is not None
        if catalog.is_dir and len(catalog.local) != 1:
            raise InvalidArgument(f"{name}: catalog must be one file, got {len(catalog.local)} under {catalog.display}")
        wave = list(waveforms.local)
        if waveforms.is_dir:  # a folder may hold the catalog and notes beside the waveforms
            wave = [p for p in wave if p not in catalog.local and not p.lower().endswith(NOT_WAVEFORMS)]
        if not wave:
            raise InvalidArgument(f"{name}: no waveform files in {waveforms.display}")
        return SourceSpec("waveform_catalog", wave, catalog_path=catalog.local[0],
                          catalog_format=CATALOG_FORMATS[source.catalog_format], name=name)
    candidates = list(waveforms.local) + (list(catalog.local) if catalog else [])
    h5 = sorted(p for p in waveforms.local if p.lower().endswith((".hdf5", ".h5")))
    csvs = sorted(p for p in candidates if p.lower().endswith(".csv"))
    if not h5:
        raise InvalidArgument(f"{name}: no .hdf5 file in {waveforms.display}")
    by_stem = {Path(p).stem: p for p in csvs}
    pairs = []
    for path in h5:
        csv = by_stem.get(Path(path).stem) or (csvs[0] if len(h5) == 1 and len(csvs) == 1 else None)
        if csv is None:
            raise InvalidArgument(f"{name}: no metadata CSV {Path(path).stem}.csv for {os.path.basename(path)}")
        pairs.append((path, csv))
    return SourceSpec("stead", [p for p, _ in pairs], metadata_paths=[c for _, c in pairs], name=name)
