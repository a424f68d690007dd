"""What a dataset request fixes: its sources, windows, preprocessing, filters, split and shard layout.

Format-free: a :class:`SourceSpec` names its reader and the reader checks it, so adding a source
format never touches this module.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from .filters import FilterSpec
from .preprocess import NORMALIZATIONS, PreprocessSpec
from .shards import DTYPES
from .split import SplitSpec
from .windows import WindowSpec

DEFAULT_NOISE_MARGIN_S = 60.0  # continuous data: noise windows keep this far from any pick or origin

FORMAT_VERSION = 1


@dataclass
class SourceSpec:
    """One source on LOCAL disk (the service downloads from object storage first).

    ``format`` names a registered reader (:mod:`quakestack.data.readers`); ``paths`` are its
    waveform files (or dataset folders); ``metadata_paths`` pair a metadata file with each path
    (STEAD's CSVs); ``catalog_path`` + ``catalog_format`` name one catalog for all paths (picks).
    What a format needs of these, its reader checks (``Reader.check_source``).
    """

    format: str
    paths: list[str]
    metadata_paths: list[str] = field(default_factory=list)
    catalog_path: str | None = None
    catalog_format: str = "quakeml"
    name: str = ""

    def __post_init__(self) -> None:
        from .readers import get_reader  # the registry imports this module

        reader = get_reader(self.format)
        if not self.paths:
            raise ValueError(f"{self.format} source needs at least one path")
        reader.check_source(self)

    def describe(self) -> dict[str, Any]:
        """Portable description (base names only: local download paths are not part of identity)."""
        return {
            "format": self.format,
            "name": self.name,
            "files": [os.path.basename(p.rstrip("/")) for p in self.paths],
            "metadata_files": [os.path.basename(p) for p in self.metadata_paths],
            "catalog": os.path.basename(self.catalog_path) if self.catalog_path else None,
            "catalog_format": self.catalog_format if self.catalog_path else None,
        }


@dataclass(frozen=True)
class ListOptions:
    """What a reader's ``list_items`` may take from the request besides its source (one signature for all)."""

    window: WindowSpec
    edge_pad_s: float = 5.0
    noise_margin_s: float = DEFAULT_NOISE_MARGIN_S
    max_noise_per_stream: int | None = None
    noise_windows_per_event: int | None = None


@dataclass
class DatasetSpec:
    """Everything a dataset request fixes."""

    name: str
    sources: list[SourceSpec]
    window: WindowSpec = field(default_factory=WindowSpec)
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    filters: FilterSpec = field(default_factory=FilterSpec)
    split: SplitSpec = field(default_factory=SplitSpec)
    shard_size: int = 1000
    dtype: str = "float32"
    seed: int = 0
    normalization: str = "none"  # recorded for the trainer, never applied to stored windows
    location_clusters: int = 0  # k-means clusters over epicentres; 0 = off
    edge_pad_s: float = 5.0  # extra data read around continuous-data windows (filter edges)
    noise_margin_s: float = DEFAULT_NOISE_MARGIN_S  # continuous data: noise windows keep this far from any pick
    max_noise_per_stream: int | None = None
    noise_windows_per_event: int | None = None  # continuous data: cap noise per stream at k x its events
    description: str = ""

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("a dataset needs at least one source")
        if self.shard_size <= 0:
            raise ValueError(f"shard_size must be positive, got {self.shard_size}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")

    def list_options(self) -> ListOptions:
        """The request as every reader sees it while listing."""
        return ListOptions(window=self.window, edge_pad_s=self.edge_pad_s, noise_margin_s=self.noise_margin_s,
                           max_noise_per_stream=self.max_noise_per_stream,
                           noise_windows_per_event=self.noise_windows_per_event)

    def parameters(self) -> dict[str, Any]:
        """The request's parameters as plain JSON-able data (sources described by base names)."""
        return {
            "window": dataclasses.asdict(self.window),
            "preprocess": dataclasses.asdict(self.preprocess),
            "filters": dataclasses.asdict(self.filters),
            "split": dataclasses.asdict(self.split),
            "shard_size": self.shard_size,
            "dtype": self.dtype,
            "seed": self.seed,
            "normalization": self.normalization,
            "location_clusters": self.location_clusters,
            "edge_pad_s": self.edge_pad_s,
            "noise_margin_s": self.noise_margin_s,
            "max_noise_per_stream": self.max_noise_per_stream,
            "noise_windows_per_event": self.noise_windows_per_event,
        }

    def render_parameters(self) -> dict[str, Any]:
        """The parameters that change a shard's bytes (part of every plan_sha256)."""
        return {
            "format_version": FORMAT_VERSION,
            "window": dataclasses.asdict(self.window),
            "preprocess": dataclasses.asdict(self.preprocess),
            "dtype": self.dtype,
            "seed": self.seed,
        }
