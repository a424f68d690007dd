"""Helpers shared by the readers (checks every loaded array must pass)."""

from __future__ import annotations

import numpy as np

from ..records import Skipped


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
