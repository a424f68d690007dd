"""The manifest of a rendered dataset: counts per split and class, histogram, every shard's files and sha256.

Built from the plan and the shards' results (in any order), after every shard is rendered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from . import manifest as mf
from .plan import DatasetPlan, json_safe
from .render import ShardResult
from .spec import FORMAT_VERSION, DatasetSpec


def build_manifest(spec: DatasetSpec, plan: DatasetPlan, results: Sequence[ShardResult]) -> dict[str, Any]:
    """The manifest dict (see :mod:`quakestack.data.manifest`); ``results`` in any order."""
    by_key = {r.key: r for r in results}
    missing = [s.key for s in plan.shards if s.key not in by_key]
    if missing:
        raise ValueError(f"manifest needs every shard rendered; missing: {', '.join(missing[:5])}")
    splits: dict[str, dict[str, Any]] = {}
    hist = [0] * mf.MAGNITUDE_BIN_COUNT
    skipped: Counter[str] = Counter(plan.skipped_counts)
    categories: Counter[str] = Counter()
    shards = []
    for sp in plan.shards:
        r = by_key[sp.key]
        s = splits.setdefault(sp.split, {"count": 0, "shards": 0, "categories": Counter()})
        s["count"] += r.count
        s["shards"] += 1
        s["categories"].update(r.category_counts)
        categories.update(r.category_counts)
        skipped.update(r.skipped)
        hist = [a + b for a, b in zip(hist, r.magnitude_histogram, strict=True)]
        shards.append(
            {
                "key": r.key,
                "split": r.split,
                "index": r.index,
                "count": r.count,
                "plan_sha256": r.plan_sha256,
                "files": {
                    name: {"key": f"{r.key}/{name}", "sha256": r.sha256[name], "size": r.sizes.get(name)}
                    for name in sorted(r.sha256)
                },
            }
        )
    for s in splits.values():
        s["categories"] = dict(sorted(s["categories"].items()))
    written = sum(r.count for r in results)
    return {
        "version": mf.MANIFEST_VERSION,
        "format_version": FORMAT_VERSION,
        "name": spec.name,
        "description": spec.description,
        "created_at": mf.now_iso(),
        "source": [src.describe() for src in spec.sources],
        "parameters": json_safe(spec.parameters()),
        "sampling_rate": spec.window.sampling_rate,
        "window_length_s": spec.window.length_s,
        "window_length_samples": spec.window.n_samples,
        "component_order": spec.preprocess.component_order,
        "dimension_order": "NCW",
        "dtype": spec.dtype,
        "normalization": spec.normalization,
        "size_bytes": sum(sum(r.sizes.values()) for r in results),
        "splits": splits,
        "categories": dict(sorted(categories.items())),
        "magnitude_histogram": {"bin_edges": mf.magnitude_bin_edges(), "counts": hist},
        "shards": shards,
        "skipped": dict(sorted(skipped.items())),
        "filtered": dict(sorted(plan.filtered.items())),
        "counts": {
            "listed": plan.n_listed,
            "selected": plan.n_selected,
            "written": written,
            "skipped": sum(skipped.values()),
            # windows holding samples the gap policy (parameters.preprocess.gap_policy) filled; each
            # window's own count is its metadata's trace_gap_filled_samples
            "gap_filled_windows": sum(r.gap_filled_windows for r in results),
            "gap_filled_samples": sum(r.gap_filled_samples for r in results),
        },
    }
