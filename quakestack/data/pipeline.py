"""The engine the data service calls: plan a dataset cheaply, then render it shard by shard.

The parts live in one module per job: :mod:`.spec` (what a request fixes), :mod:`.plan` (metadata
only: list, filter, split, deal to shards), :mod:`.render` (one shard's files) and
:mod:`.build_manifest`; this module runs them in order and re-exports them for callers.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from quakestack.layout import MANIFEST_FILE

from . import manifest as mf
from .build_manifest import build_manifest
from .plan import DatasetPlan, ShardPlan, item_fingerprint, plan_dataset
from .records import DataSourceError
from .render import RESULT_ATTR, ShardResult, render_shard
from .spec import FORMAT_VERSION, DatasetSpec, ListOptions, SourceSpec


def run_dataset(spec: DatasetSpec, out_dir: str, max_workers: int = 1, resume: bool = True) -> dict[str, Any]:
    """Plan, render every shard (in worker processes if ``max_workers`` > 1) and write manifest.json last."""
    plan = plan_dataset(spec)
    if max_workers > 1 and len(plan.shards) > 1:
        with ProcessPoolExecutor(max_workers=max_workers) as pool:
            futures = [pool.submit(render_shard, sp, spec, out_dir, resume) for sp in plan.shards]
            results = [f.result() for f in futures]
    else:
        results = [render_shard(sp, spec, out_dir, resume) for sp in plan.shards]
    manifest = build_manifest(spec, plan, results)
    mf.write_manifest(os.path.join(out_dir, MANIFEST_FILE), manifest)
    return manifest


__all__ = [
    "FORMAT_VERSION",
    "RESULT_ATTR",
    "DataSourceError",
    "DatasetPlan",
    "DatasetSpec",
    "ListOptions",
    "ShardPlan",
    "ShardResult",
    "SourceSpec",
    "build_manifest",
    "item_fingerprint",
    "plan_dataset",
    "render_shard",
    "run_dataset",
]
