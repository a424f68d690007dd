"""From SeisBench-style shard metadata to target / extra-input tensors, and "does this dataset fit?".

Columns used: ``source_magnitude``, ``trace_category`` (STEAD: "earthquake_local", "noise"; others:
"explosion", "quarry blast", ...), ``location_cluster``, ``trace_p_arrival_sample``,
``trace_s_arrival_sample``, ``path_p_travel_sec``. Missing values become NaN (magnitudes, samples) or
-100 (labels), which the losses and metrics skip.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from quakestack.models.losses import IGNORE_INDEX
from quakestack.models.spec import DETECTION_CLASSES, ArchitectureSpec, Task

MAGNITUDE_COLUMN = "source_magnitude"
CATEGORY_COLUMN = "trace_category"
CLUSTER_COLUMN = "location_cluster"
# Extra model input name -> metadata column.
EXTRA_COLUMNS = {
    "p_arrival_sample": "trace_p_arrival_sample",
    "s_arrival_sample": "trace_s_arrival_sample",
    "p_travel_s": "path_p_travel_sec",
}
_EXPLOSION_WORDS = ("explosion", "blast", "quarry", "mine", "mining", "nuclear", "explo")
_NOISE_WORDS = ("noise",)


def category_class(category: object) -> str | None:
    """Map a free-text trace_category to earthquake / explosion / noise (None if unrecognised)."""
    if category is None or (isinstance(category, float) and np.isnan(category)):
        return None
    text = str(category).strip().lower()
    if not text:
        return None
    if any(w in text for w in _NOISE_WORDS):
        return "noise"
    if any(w in text for w in _EXPLOSION_WORDS):
        return "explosion"
    if "earthquake" in text or text in {"eq", "event", "local", "regional", "teleseismic"}:
        return "earthquake"
    return None


def _labels(categories: pd.Series, spec: ArchitectureSpec) -> np.ndarray:
    classes = [category_class(c) for c in categories]
    if spec.task is Task.DETECTION:
        names = [None if c is None else ("noise" if c == "noise" else "event") for c in classes]
        index = {n: i for i, n in enumerate(DETECTION_CLASSES)}
    else:
        names = classes
        index = {n: i for i, n in enumerate(spec.class_names)}
    return np.array([index.get(n, IGNORE_INDEX) if n else IGNORE_INDEX for n in names], dtype=np.int64)


def _float_column(metadata: pd.DataFrame, column: str) -> np.ndarray:
    if column not in metadata:
        return np.full(len(metadata), np.nan, dtype=np.float32)
    return pd.to_numeric(metadata[column], errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)


def targets_from_metadata(spec: ArchitectureSpec, metadata: pd.DataFrame) -> dict[str, np.ndarray]:
    """Target arrays for ``spec``'s task: ``magnitude`` (+ P arrival) or ``label`` (+ ``cluster``)."""
    if spec.task is Task.MAGNITUDE:
        magnitude = _float_column(metadata, MAGNITUDE_COLUMN)
        if CATEGORY_COLUMN in metadata:  # a noise window has no magnitude even if the column is filled
            is_noise = np.array([category_class(c) == "noise" for c in metadata[CATEGORY_COLUMN]], dtype=bool)
            magnitude = np.where(is_noise, np.nan, magnitude).astype(np.float32)
        return {
            "magnitude": magnitude,
            "p_arrival_sample": _float_column(metadata, EXTRA_COLUMNS["p_arrival_sample"]),
        }
    if spec.task is Task.PICKING:  # sample labels; the loss draws the Gaussian targets from them
        return {"p_sample": _float_column(metadata, EXTRA_COLUMNS["p_arrival_sample"]),
                "s_sample": _float_column(metadata, EXTRA_COLUMNS["s_arrival_sample"])}
    if CATEGORY_COLUMN not in metadata:
        raise ValueError(f"{spec.name} needs a {CATEGORY_COLUMN} column")
    out = {"label": _labels(metadata[CATEGORY_COLUMN], spec)}
    if spec.task is Task.DETECTION:
        cluster = _float_column(metadata, CLUSTER_COLUMN)
        cluster = np.where(np.isfinite(cluster) & (cluster >= 0) & (out["label"] == 1), cluster, IGNORE_INDEX)
        out["cluster"] = cluster.astype(np.int64)
    return out


def extras_from_metadata(spec: ArchitectureSpec, metadata: pd.DataFrame) -> dict[str, np.ndarray]:
    """The extra scalar inputs ``spec`` declares (e.g. P/S arrival samples), as float32 arrays."""
    return {name: _float_column(metadata, EXTRA_COLUMNS.get(name, name)) for name in spec.input_spec.extra_inputs}


def batch_targets(
    spec: ArchitectureSpec, metadata: pd.DataFrame, device: torch.device | str | None = None
) -> dict[str, Tensor]:
    """Targets of one batch as tensors (float32 magnitudes / int64 labels)."""
    return {k: torch.from_numpy(v).to(device) for k, v in targets_from_metadata(spec, metadata).items()}


def batch_extras(
    spec: ArchitectureSpec, metadata: pd.DataFrame, device: torch.device | str | None = None
) -> dict[str, Tensor] | None:
    """Extra inputs of one batch as float32 tensors, or None for architectures without extras."""
    if not spec.input_spec.extra_inputs:
        return None
    return {k: torch.from_numpy(v).to(device) for k, v in extras_from_metadata(spec, metadata).items()}


def check_dataset_fits(
    spec: ArchitectureSpec, columns: Iterable[str], categories: Iterable[str] | None = None
) -> str | None:
    """Why a dataset (metadata columns, trace_category values) cannot train ``spec``; None if it fits."""
    columns = set(columns)
    missing = [c for c in spec.labels_required if c not in columns]
    if missing:
        return f"{spec.name} ({spec.task.value}) needs metadata column(s) {', '.join(missing)}, which the dataset lacks"
    missing_extra = [
        EXTRA_COLUMNS.get(e, e) for e in spec.input_spec.extra_inputs if EXTRA_COLUMNS.get(e, e) not in columns
    ]
    if missing_extra:
        return f"{spec.name} takes extra inputs from column(s) {', '.join(missing_extra)}: not in the dataset"
    if categories is None:
        return None
    present = {category_class(c) for c in categories}
    if spec.task is Task.MAGNITUDE:
        if present and present <= {"noise"}:
            return f"{spec.name} estimates magnitudes but the dataset holds only noise windows"
        return None
    if spec.task is Task.PICKING:
        if present and not present & {"earthquake", "explosion"}:
            return f"{spec.name} picks P and S but the dataset has no event windows (only noise)"
        return None
    if spec.task is Task.DETECTION:
        if "noise" not in present:
            return f"{spec.name} detects events against noise but the dataset has no noise windows"
        if not present & {"earthquake", "explosion"}:
            return f"{spec.name} detects events but the dataset has no event windows (only noise)"
        return None
    known = present & set(spec.class_names)
    if len(known) < 2:
        found = ", ".join(sorted(str(c) for c in set(categories))) or "none"
        return (
            f"{spec.name} classifies {', '.join(spec.class_names)} but the dataset's trace categories "
            f"({found}) cover fewer than two of these classes"
        )
    return None
