"""sha256 of local files, the one way: what storage records, manifests list and uploads announce."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1024 * 1024


def file_sha256(*paths: str | Path) -> str:
    """Hex sha256 of the files' bytes, in order (several files hash as their concatenation, as uploaded)."""
    digest = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as fh:
            for block in iter(lambda: fh.read(BLOCK), b""):
                digest.update(block)
    return digest.hexdigest()
