"""Reading a whole waveform file for AnnotateFile: from the bucket or an allow-listed local path."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from quakestack.errors import InvalidArgument, NotFound, PermissionDenied
from quakestack.storage import ObjectStore


def allowed_local_path(path: str, allowed_dirs: Sequence[Path]) -> Path:
    """The resolved path when it lies under one of ``allowed_dirs`` (symlinks resolved first)."""
    if not path or not Path(path).is_absolute():
        raise InvalidArgument(f"local_path must be absolute, got {path!r}")
    resolved = Path(path).resolve()
    if not any(resolved == d or d in resolved.parents for d in allowed_dirs):
        raise PermissionDenied(f"{path} is not under QUAKESTACK_DATA_ALLOWED_DIRS")
    if not resolved.is_file():
        raise NotFound(f"no file {path}")
    return resolved


def read_stream(path: str | Path, sampling_rate: float | None):  # -> obspy.Stream
    """Read any ObsPy format; gaps filled with zeros; traces at another rate resampled to `sampling_rate`
    (None: left as they are, for a caller that resamples and reports it)."""
    import obspy

    try:
        stream = obspy.read(str(path))
    except Exception as exc:  # noqa: BLE001 - ObsPy raises many types for unreadable input
        raise InvalidArgument(f"cannot read waveform file: {exc}") from None
    for tr in stream:
        tr.data = np.asarray(tr.data, dtype=np.float32)
        if sampling_rate and abs(tr.stats.sampling_rate - sampling_rate) > 1e-6 * sampling_rate:
            tr.data = tr.data.astype(np.float64)
            tr.resample(sampling_rate)
    stream.merge(method=1, fill_value=0)
    return stream


def fetch_object(store: ObjectStore, key: str, directory: str) -> Path:
    """Download an object to ``directory`` (a temporary directory the caller removes)."""
    target = Path(directory) / Path(key).name
    store.get_file(key, target)
    return target


def temporary_directory() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="quakestack-annotate-")
