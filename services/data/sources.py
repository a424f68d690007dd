"""Where source files come from: object storage (a key or a key prefix) or allow-listed local paths.

`check_location` runs in the RPC (cheap: stat/list, path checks) so that a missing key is NOT_FOUND
and a path outside QUAKESTACK_DATA_ALLOWED_DIRS is PERMISSION_DENIED before a job exists; what it
finds is recorded in the job's spec (quakestack.data.source_files), which the worker downloads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from quakestack.data.source_files import SourceFiles
from quakestack.errors import InvalidArgument, NotFound
from quakestack.layout import SHA256_SIDECAR as SIDECAR
from quakestack.paths import allowed_local_path
from quakestack.storage import ObjectStore, validate_key
from quakestack.v1 import common_pb2


def _local_files(root: str) -> list[str]:
    if os.path.isfile(root):
        return [root]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    return out


def check_location(store: ObjectStore, loc: common_pb2.Location, what: str,
                   allowed_dirs: Sequence[str]) -> SourceFiles:
    """Resolve a Location without downloading: NOT_FOUND, PERMISSION_DENIED or INVALID_ARGUMENT."""
    kind = loc.WhichOneof("location")
    if kind == "local_path":
        path = loc.local_path
        allowed_local_path(path, allowed_dirs, f"{what}.local_path")
        files = _local_files(path)
        if not files:
            raise NotFound(f"{what}: {path} holds no files")
        return SourceFiles(display=path, local_root=path, local=files, is_dir=os.path.isdir(path))
    if kind != "object_key":
        raise InvalidArgument(f"{what}: object_key or local_path is required")
    key = validate_key(loc.object_key)
    if not key.endswith("/") and store.exists(key):
        return SourceFiles(display=key, object_root=key, keys=[key])
    prefix = key.rstrip("/") + "/"
    keys = [o.key for o in store.list(prefix) if not o.key.endswith(SIDECAR)]
    if not keys:
        raise NotFound(f"{what}: no object {key!r} and no objects under {prefix!r}")
    return SourceFiles(display=prefix, object_root=prefix.rstrip("/"), keys=keys, is_dir=True)
