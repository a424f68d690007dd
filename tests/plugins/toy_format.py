"""A toy source format, written as a user adding a format would: this one module and nothing else.

A ``.npz`` file holds ``data`` (N, 3, L) float32 in Z, N, E order, ``sampling_rate``, and per trace
``p_sample``, ``magnitude``, ``station`` and ``event_id``. The tests register it through
QUAKESTACK_DATA_READERS (``tests.plugins.toy_format``) or an entry point of the ``quakestack.readers``
group, and run it through the pipeline, the CLI and the data service.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from quakestack.data import DataSourceError, ItemRef, Skipped, SourceSpec, TraceRecord
from quakestack.data.readers import Reader
from quakestack.data.spec import ListOptions

LABELS = ("p_sample", "magnitude", "station", "event_id")


def write_toy(path: str, n: int = 24, length: int = 3000, rate: float = 100.0, seed: int = 0) -> str:
    """A toy file of ``n`` traces with a P onset at ``p_sample`` and labels (what the tests ingest)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 1.0, (n, 3, length)).astype(np.float32)
    p_sample = rng.integers(500, 1500, n)
    for i, p in enumerate(p_sample):
        data[i, :, p:] += rng.normal(0.0, 20.0, (3, length - p)).astype(np.float32)
    np.savez(path, data=data, sampling_rate=np.float64(rate), p_sample=p_sample.astype(np.float64),
             magnitude=rng.uniform(1.0, 4.0, n), station=np.array([f"TX.S{i % 4}." for i in range(n)]),
             event_id=np.array([f"toy-ev{i}" for i in range(n)]))
    return path


class ToyReader(Reader):
    name = "toy"
    summary = "NumPy .npz with data (N, 3, L) and labels"
    file_kind = "a toy .npz file"

    def list_items(self, source: SourceSpec, options: ListOptions) -> list[ItemRef | Skipped]:
        out: list[ItemRef | Skipped] = []
        for path in source.paths:
            try:
                with np.load(path, allow_pickle=False) as z:
                    labels = {k: z[k] for k in LABELS}
                    rate = float(z["sampling_rate"])
            except (OSError, ValueError, KeyError) as exc:
                raise DataSourceError(path, f"not a toy file: {exc}") from None
            for i, p in enumerate(labels["p_sample"]):
                out.append(ItemRef(reader=self.name, source=path, locator={"row": i},
                                   trace_name=f"{os.path.basename(path)}#{i}", station=str(labels["station"][i]),
                                   sampling_rate=rate, event_id=str(labels["event_id"][i]),
                                   p_arrival_sample=float(p), magnitude=float(labels["magnitude"][i]),
                                   magnitude_type="ml"))
        return out

    def load_many(self, items: Sequence[ItemRef]) -> list[TraceRecord | Skipped]:
        blocks: dict[str, np.ndarray] = {}
        out: list[TraceRecord | Skipped] = []
        for item in items:
            if item.source not in blocks:
                with np.load(item.source, allow_pickle=False) as z:
                    blocks[item.source] = z["data"]
            data = np.ascontiguousarray(blocks[item.source][item.locator["row"]], dtype=np.float32)
            out.append(TraceRecord(data=data, component_order="ZNE", **item.label_fields()))
        return out

    def sniff(self, path: Path) -> int:
        return 2 if path.is_file() and path.suffix.lower() == ".npz" else 0


READER = ToyReader()
