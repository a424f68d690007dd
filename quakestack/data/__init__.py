"""quakestack.data: waveform sources -> windows -> SeisBench-compatible shards + manifest.

Pure Python/NumPy/ObsPy/h5py; the data service translates protobuf requests into these dataclasses.
"""

from .filters import FilterSpec, apply_filters
from .manifest import manifest_json, read_manifest, write_manifest
from .pipeline import (
    DatasetPlan,
    DatasetSpec,
    ShardPlan,
    ShardResult,
    SourceSpec,
    build_manifest,
    plan_dataset,
    render_shard,
    run_dataset,
)
from .preprocess import PreprocessSpec, normalize, preprocess
from .records import DataSourceError, ItemRef, Skipped, TraceMeta, TraceRecord
from .shards import read_shard, write_shard
from .split import SplitSpec, assign_splits
from .windows import WindowSpec, cut_window

__all__ = [
    "DataSourceError",
    "DatasetPlan",
    "DatasetSpec",
    "FilterSpec",
    "ItemRef",
    "PreprocessSpec",
    "ShardPlan",
    "ShardResult",
    "Skipped",
    "SourceSpec",
    "SplitSpec",
    "TraceMeta",
    "TraceRecord",
    "WindowSpec",
    "apply_filters",
    "assign_splits",
    "build_manifest",
    "cut_window",
    "manifest_json",
    "normalize",
    "plan_dataset",
    "preprocess",
    "read_manifest",
    "read_shard",
    "render_shard",
    "run_dataset",
    "write_manifest",
    "write_shard",
]
