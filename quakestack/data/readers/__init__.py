"""Source readers, one module per format (a new source = a new module + one registry entry).

Each reader module offers the same two-phase API so that the pipeline can plan cheaply first:

- ``list_items(...) -> list[ItemRef | Skipped]``: metadata only (labels + locator), no waveform reads;
- ``load_many(items) -> list[TraceRecord | Skipped]``: waveforms, each source file opened once;
- ``load(item) -> TraceRecord | Skipped``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

from ..records import ItemRef, Skipped, TraceRecord

READERS: dict[str, str] = {
    "stead": "quakestack.data.readers.stead",
    "seisbench": "quakestack.data.readers.seisbench",
    "waveform_catalog": "quakestack.data.readers.waveform_catalog",
}


def get_reader(name: str) -> ModuleType:
    """Return the reader module registered under ``name`` (ValueError for an unknown format)."""
    try:
        return importlib.import_module(READERS[name])
    except KeyError:
        raise ValueError(f"unknown source format {name!r}; known: {sorted(READERS)}") from None


def load_items(items: Sequence[ItemRef]) -> list[TraceRecord | Skipped]:
    """Load items of any formats, in order; each reader batches its own items (one open per file)."""
    out: list[TraceRecord | Skipped | None] = [None] * len(items)
    by_reader: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_reader.setdefault(item.reader, []).append(i)
    for name, idx in by_reader.items():
        loaded = get_reader(name).load_many([items[i] for i in idx])
        for i, rec in zip(idx, loaded, strict=True):
            out[i] = rec
    return out  # type: ignore[return-value]
