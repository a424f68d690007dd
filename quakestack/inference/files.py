"""Reading a whole waveform file for AnnotateFile: from the bucket or an allow-listed local path."""

from __future__ import annotations

import tempfile
from pathlib import Path

from quakestack.errors import InvalidArgument
from quakestack.storage import ObjectStore


def read_stream(path: str | Path):  # -> obspy.Stream
    """Read any ObsPy format, traces as they are: the annotator's quality gate resamples, merges and
    counts the gaps it fills."""
    import obspy

    try:
        return obspy.read(str(path))
    except Exception as exc:  # noqa: BLE001 - ObsPy raises many types for unreadable input
        raise InvalidArgument(f"cannot read waveform file: {exc}") from None


def fetch_object(store: ObjectStore, key: str, directory: str) -> Path:
    """Download an object to ``directory`` (a temporary directory the caller removes)."""
    target = Path(directory) / Path(key).name
    store.get_file(key, target)
    return target


def temporary_directory() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="quakestack-annotate-")
