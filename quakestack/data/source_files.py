"""A dataset source's files as a job spec records them, and their download into the worker's cache.

The data service resolves each source once, when the job is created (which objects a key or
prefix names, which files an allow-listed local path holds) and records that in the job's spec;
the worker takes the list as-is, downloads the objects into its own cache (sha256-checked, a cached
copy with the stored digest is reused) and hands the local files to the source's reader.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from quakestack.data.readers import Located, get_reader
from quakestack.data.spec import SourceSpec
from quakestack.errors import NotFound
from quakestack.layout import sha256_sidecar_key
from quakestack.storage import ObjectStore

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@dataclass
class SourceFiles:
    """One location, resolved: object keys under a key or prefix, or the files of a local path."""

    display: str  # what messages name: the object key / prefix or the local path
    local_root: str = ""  # a local path (file or folder); empty for objects
    object_root: str = ""  # the key or prefix (without its trailing slash) for objects
    keys: list[str] = field(default_factory=list)  # objects to download; empty for local paths
    local: list[str] = field(default_factory=list)  # local files (for a local path)
    is_dir: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> SourceFiles:
        return cls(**value)

    def root(self, cache_dir: str) -> str:
        """Where the files lie on this machine: the local path, or the objects' place in the cache."""
        return self.local_root or os.path.join(cache_dir, "objects", self.object_root)


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


def fetch(store: ObjectStore, files: SourceFiles, cache_dir: str, on_file: Callable[[str, int], None]) -> list[str]:
    """The location's local files, downloading its objects into the cache first."""
    if not files.keys:
        return list(files.local)
    cache_root = os.path.join(cache_dir, "objects")
    out = []
    for key in files.keys:
        path = os.path.join(cache_root, key)
        with _key_lock(key):
            store.cached_file(key, path, expected_sha256(store, key))
        out.append(path)
        on_file(key, os.path.getsize(path))
    return out


def source_spec(source: dict[str, Any], index: int, waveforms: list[str], catalog: list[str] | None,
                cache_dir: str) -> SourceSpec:
    """The library's SourceSpec over fetched local files: the source's reader resolves them."""
    reader = get_reader(source["format"])

    def located(files: SourceFiles, local: list[str]) -> Located:
        return Located(display=files.display, root=files.root(cache_dir), files=local, is_dir=files.is_dir)

    wave = located(SourceFiles.from_dict(source["waveforms"]), waveforms)
    cat = located(SourceFiles.from_dict(source["catalog"]), catalog or []) if source.get("catalog") else None
    return reader.resolve(wave, cat, source.get("catalog_format"), f"sources[{index}]")
