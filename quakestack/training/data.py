"""Input pipeline: a dataset's shards fetched into a local cache (sha256-checked), read as whole blocks.

Normalisation is deterministic per window, so it is applied once when a split is loaded rather
than per batch: the training loop then only slices contiguous arrays, and the accelerator never
waits for data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quakestack.data.preprocess import normalize
from quakestack.data.shards import SHARD_COLUMNS, read_shard
from quakestack.errors import FailedPrecondition
from quakestack.layout import dataset_file_key
from quakestack.models.spec import ArchitectureSpec, InputSpec
from quakestack.models.targets import check_dataset_fits, extras_from_metadata, targets_from_metadata
from quakestack.storage import ObjectStore


def fetch_split(store: ObjectStore, dataset: str, manifest: dict[str, Any], split: str, cache_dir: Path,
                manifest_sha256: str) -> list[Path]:
    """Download the split's shards (once: a verified file keeps a `.sha256` marker) and return their dirs."""
    return [fetch_shard(store, dataset, shard, cache_dir, manifest_sha256)
            for shard in manifest["shards"] if shard["split"] == split]


def fetch_shard(store: ObjectStore, dataset: str, shard: dict[str, Any], cache_dir: Path | str,
                manifest_sha256: str) -> Path:
    """One shard's files in the local cache (verified by sha256, downloaded once); returns its directory."""
    directory = Path(cache_dir) / "datasets" / manifest_sha256[:16] / shard["key"]
    for name, info in shard["files"].items():
        store.cached_file(dataset_file_key(dataset, info["key"]), directory / name, info["sha256"])
    return directory


@dataclass
class SplitData:
    """One split in memory: windows (N, C, L) float32, their metadata, targets and extra inputs."""

    x: np.ndarray
    meta: pd.DataFrame
    targets: dict[str, np.ndarray]
    extras: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.x.shape[0])


def check_compatible(spec: ArchitectureSpec, input_spec: InputSpec, manifest: dict[str, Any]) -> None:
    """Refuse, before a job starts, a dataset whose windows or labels do not fit the architecture."""
    length = int(manifest["window_length_samples"])
    components = manifest["component_order"]
    if length < input_spec.n_samples:
        raise FailedPrecondition(f"{spec.name} takes {input_spec.n_samples}-sample windows; "
                                 f"the dataset's are {length} samples")
    missing = [c for c in input_spec.components if c not in components]
    if missing:
        raise FailedPrecondition(f"{spec.name} takes components {input_spec.components}; "
                                 f"the dataset has {components}")
    if abs(float(manifest["sampling_rate"]) - input_spec.sampling_rate) > 1e-6:
        raise FailedPrecondition(f"{spec.name} takes {input_spec.sampling_rate} Hz; "
                                 f"the dataset is {manifest['sampling_rate']} Hz")
    train = manifest.get("splits", {}).get("train", {})
    if not train.get("count"):
        raise FailedPrecondition("the dataset's train split is empty")
    categories = set(manifest.get("categories", {}))
    reason = check_dataset_fits(spec, SHARD_COLUMNS, categories)
    if reason:
        raise FailedPrecondition(reason)


def load_split(dirs: list[Path], spec: ArchitectureSpec, input_spec: InputSpec, manifest: dict[str, Any],
               normalization: str) -> SplitData:
    """Concatenate the split's blocks, select components, crop to the model's length, normalise once."""
    blocks, metas = [], []
    for directory in dirs:
        block, meta = read_shard(str(directory), dtype="float32")
        blocks.append(block)
        metas.append(meta)
    components = manifest["component_order"]
    n_channels, length = len(components), int(manifest["window_length_samples"])
    x = np.concatenate(blocks) if blocks else np.zeros((0, n_channels, length), np.float32)
    meta = pd.concat(metas, ignore_index=True) if metas else pd.DataFrame()
    channel_index = [components.index(c) for c in input_spec.components]
    if channel_index != list(range(n_channels)) or length != input_spec.n_samples:
        x = x[:, channel_index, : input_spec.n_samples]
    x = np.ascontiguousarray(normalize(np.asarray(x, dtype=np.float32), normalization))
    targets = targets_from_metadata(spec, meta) if len(meta) else {}
    extras = extras_from_metadata(spec, meta) if len(meta) else {}
    return SplitData(x=x, meta=meta, targets=targets, extras=extras)

