"""Reading a whole waveform file for AnnotateFile: from the bucket or an allow-listed local path."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from quakestack.errors import InvalidArgument
from quakestack.storage import ObjectStore


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
