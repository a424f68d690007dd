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

from quakestack.data import SourceSpec, readers
from quakestack.data.readers import Located
from quakestack.errors import InvalidArgument, NotFound
from quakestack.layout import SHA256_SIDECAR as SIDECAR
from quakestack.layout import sha256_sidecar_key
from quakestack.paths import allowed_local_path
from quakestack.storage import ObjectStore, validate_key
from quakestack.v1 import common_pb2, data_pb2
from services.data.requests import catalog_format_name, source_format

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
    """The library's SourceSpec over fetched local files: the source's reader resolves them."""
    reader = readers.get_reader(source_format(source, index))

    def located(files: Files) -> Located:
        return Located(display=files.display, root=files.root, files=list(files.local), is_dir=files.is_dir)

    return reader.resolve(located(waveforms), located(catalog) if catalog else None, catalog_format_name(source),
                          f"sources[{index}]")
