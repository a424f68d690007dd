"""Planning a dataset from metadata alone: list every source, filter, cluster, split, deal to shards.

Each :class:`ShardPlan` carries a ``plan_sha256`` over its inputs and the rendering parameters, so a
finished shard is recognised and a crashed job resumes shard by shard.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from obspy import UTCDateTime

from quakestack.layout import shard_dir

from .clusters import assign_clusters
from .filters import apply_filters
from .readers import get_reader
from .records import ItemRef, Skipped
from .spec import DatasetSpec
from .split import SPLITS, assign_splits


@dataclass
class ShardPlan:
    """The items of one shard, in the order they will be written, and the hash identifying it."""

    split: str
    index: int
    items: list[ItemRef]
    plan_sha256: str

    @property
    def key(self) -> str:
        """Relative location: ``shards/<split>/<nnnnn>`` (object key prefix and local directory)."""
        return shard_dir(self.split, self.index)


@dataclass
class DatasetPlan:
    """The whole dataset before any waveform is read."""

    name: str
    shards: list[ShardPlan]
    skipped: list[Skipped]  # found while listing (bad rows, picks matching no waveform...)
    filtered: dict[str, int]  # dropped by filters, per reason
    n_listed: int
    n_selected: int

    @property
    def skipped_counts(self) -> dict[str, int]:
        return dict(Counter(s.reason for s in self.skipped))


def json_safe(value: Any) -> Any:
    """Plain JSON data from labels and parameters (times as text, NaN/inf as null, NumPy scalars as Python)."""
    if isinstance(value, UTCDateTime):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def item_fingerprint(item: ItemRef) -> dict[str, Any]:
    """What identifies an item's content: labels + locator, with file paths reduced to base names."""
    loc = dict(item.locator)
    if "files" in loc:
        loc["files"] = [os.path.basename(p) for p in loc["files"]]
    return json_safe(
        {
            "reader": item.reader,
            "source": os.path.basename(item.source),
            "locator": loc,
            **item.label_fields(),
        }
    )


def _plan_hash(spec: DatasetSpec, split: str, index: int, items: Sequence[ItemRef]) -> str:
    payload = {
        "params": spec.render_parameters(),
        "split": split,
        "index": index,
        "items": [item_fingerprint(it) for it in items],
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def plan_dataset(spec: DatasetSpec) -> DatasetPlan:
    """List all sources (metadata only), filter, cluster, split and deal items to shards.

    Raises DataSourceError when a source cannot be used at all; bad rows and unmatched picks become
    ``plan.skipped``.
    """
    items: list[ItemRef] = []
    skipped: list[Skipped] = []
    options = spec.list_options()
    for src in spec.sources:
        for x in get_reader(src.format).list_items(src, options):
            (skipped if isinstance(x, Skipped) else items).append(x)  # type: ignore[arg-type]
    n_listed = len(items)
    filtered: Counter[str] = Counter()
    if not spec.window.include_noise:
        n0 = len(items)
        items = [it for it in items if not it.is_noise]
        if n0 - len(items):
            filtered["filtered: noise windows not requested"] += n0 - len(items)
    items, dropped = apply_filters(items, spec.filters, seed=spec.seed)
    filtered.update(dropped)
    if spec.location_clusters > 0:
        assign_clusters(items, spec.location_clusters, seed=spec.seed)
    names = assign_splits(items, spec.split, seed=spec.seed)
    shards: list[ShardPlan] = []
    for k, split in enumerate(SPLITS):
        members = sorted((it for it, s in zip(items, names, strict=True) if s == split), key=ItemRef.sort_key)
        if not members:
            continue
        perm = np.random.default_rng([spec.seed, k]).permutation(len(members))
        members = [members[i] for i in perm]
        for index, a in enumerate(range(0, len(members), spec.shard_size)):
            chunk = members[a : a + spec.shard_size]
            shards.append(ShardPlan(split, index, chunk, _plan_hash(spec, split, index, chunk)))
    return DatasetPlan(spec.name, shards, skipped, dict(filtered), n_listed, len(items))
