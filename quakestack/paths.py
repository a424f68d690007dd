"""Local paths a request may name: only under QUAKESTACK_DATA_ALLOWED_DIRS, checked one way everywhere.

The data service (sources), the inference service (AnnotateFile) and archive annotation (local SDS)
all read local files on a caller's behalf, so they share one rule: an absolute path whose real
location (symlinks and '..' resolved) is one of the allow-listed directories or lies below one.
An empty allow-list disables local paths; each refusal names the path and the setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from quakestack.errors import InvalidArgument, NotFound, PermissionDenied

SETTING = "QUAKESTACK_DATA_ALLOWED_DIRS"


def allowed_local_path(path: str, allowed_dirs: Sequence[str | Path], what: str = "local_path", *,
                       kind: Literal["file", "dir", "any"] = "any") -> Path:
    """The resolved path when it may be read: INVALID_ARGUMENT (relative), PERMISSION_DENIED (outside
    the allow-list, or none configured), NOT_FOUND (missing, or not a file / directory as `kind` asks)."""
    if not path or not Path(path).is_absolute():
        raise InvalidArgument(f"{what} must be absolute, got {path!r}")
    if not allowed_dirs:
        raise PermissionDenied(f"{what}: local paths are disabled ({SETTING} is empty): {path}")
    resolved = Path(path).resolve()
    bases = [Path(d).resolve() for d in allowed_dirs]
    if not any(resolved == base or base in resolved.parents for base in bases):
        shown = ", ".join(str(d) for d in allowed_dirs)
        raise PermissionDenied(f"{what}: {path} is outside {SETTING} ({shown})")
    exists = {"file": resolved.is_file, "dir": resolved.is_dir, "any": resolved.exists}[kind]()
    if not exists:
        thing = {"file": "file", "dir": "directory", "any": "file or directory"}[kind]
        raise NotFound(f"{what}: no {thing} {path}")
    return resolved
