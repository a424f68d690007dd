"""Train/val/test assignment: seeded by event (no event straddles splits) or by time (no look-ahead)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .records import ItemRef

SPLITS = ("train", "val", "test")


@dataclass
class SplitSpec:
    """Ratios (must sum to 1) and the strategy: "event" (seeded, grouped by event id) or "time"."""

    train: float = 0.8
    val: float = 0.1
    test: float = 0.1
    by: str = "event"

    def __post_init__(self) -> None:
        ratios = (self.train, self.val, self.test)
        if any(r < 0 for r in ratios):
            raise ValueError(
                f"split ratios must be non-negative, got train={self.train} val={self.val} test={self.test}"
            )
        total = sum(ratios)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"split ratios must sum to 1 (within 1e-6), got train={self.train} + "
                f"val={self.val} + test={self.test} = {total:.9g}"
            )
        if self.by not in ("event", "time"):
            raise ValueError(f"split 'by' must be 'event' or 'time', got {self.by!r}")


def group_key(item: ItemRef) -> str:
    """Windows of one event share a group; noise (and event-less) items are groups of their own."""
    if item.event_id and not item.is_noise:
        return f"event:{item.event_id}"
    return "item:" + "|".join(item.sort_key())


def _item_time(item: ItemRef) -> float:
    t = item.origin_time or item.start_time
    return float(t.timestamp) if t is not None else float("inf")


def assign_splits(items: Sequence[ItemRef], spec: SplitSpec, seed: int = 0) -> list[str]:
    """Split name per item (parallel to ``items``); groups are filled in order up to each ratio."""
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(group_key(item), []).append(i)
    keys = sorted(groups)
    if spec.by == "time":
        keys.sort(key=lambda k: (min(_item_time(items[i]) for i in groups[k]), k))
    else:
        perm = np.random.default_rng(seed).permutation(len(keys))
        keys = [keys[i] for i in perm]
    n = len(items)
    bounds = (spec.train * n, (spec.train + spec.val) * n)
    out = [""] * n
    done = 0
    for k in keys:
        members = groups[k]
        # Assign by the group's midpoint so that rounding is fair to all three splits.
        mid = done + len(members) / 2.0
        name = "train" if mid <= bounds[0] else ("val" if mid <= bounds[1] else "test")
        if spec.train == 0 and name == "train":
            name = "val" if spec.val > 0 else "test"
        if spec.val == 0 and name == "val":
            name = "train" if mid <= bounds[0] or spec.test == 0 else "test"
        if spec.test == 0 and name == "test":
            name = "val" if spec.val > 0 else "train"
        for i in members:
            out[i] = name
        done += len(members)
    return out
