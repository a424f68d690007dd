"""Helpers shared by the readers (checks every loaded array must pass)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import h5py
import numpy as np

from ..records import ItemRef, Skipped


def check_array(data: np.ndarray, source: str, trace: str) -> Skipped | None:
    """Reject arrays no model should see: empty, non-finite or entirely zero (a dead trace)."""
    if data.size == 0 or data.shape[-1] == 0:
        return Skipped(source, trace, "zero-length trace", f"shape {tuple(data.shape)}")
    total = float(data.sum(dtype=np.float64))  # one pass answers both questions in the common case
    if np.isfinite(total) and total != 0.0:
        return None
    finite = np.isfinite(data)
    if not finite.all():
        n_bad = int(data.size - np.count_nonzero(finite))
        return Skipped(source, trace, "non-finite samples (NaN/inf)", f"{n_bad} of {data.size} samples")
    if not np.any(data):
        return Skipped(source, trace, "all-zero trace")
    return None


def normalise_category(raw: str | None) -> str:
    """Map source category spellings ('earthquake_local', 'noise', 'explosion'...) onto our classes."""
    text = (raw or "").strip().lower()
    if not text:
        return "earthquake"
    if "noise" in text:
        return "noise"
    if "explosion" in text or "blast" in text or text in ("ex", "qb", "mine"):
        return "explosion"
    if "earthquake" in text or text in ("eq", "le", "re", "ke", "local", "regional"):
        return "earthquake"
    return text


def hdf5_files(items: Sequence[ItemRef], out: list) -> Iterator[tuple[h5py.File, str, list[int]]]:
    """Group items by their HDF5 file and open each file once (readers load a shard file by file).

    A file that does not open turns each of its items into a Skipped entry of ``out``.
    """
    by_file: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_file.setdefault(item.source, []).append(i)
    for path, idx in by_file.items():
        src = os.path.basename(path)
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            for i in idx:
                out[i] = Skipped(src, items[i].trace_name, "cannot open HDF5 file", str(exc))
            continue
        with f:
            yield f, src, idx
