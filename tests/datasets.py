"""Small real datasets for service tests: synthetic STEAD files through the real data pipeline.

The shards and manifest are stored in the layout the data service writes (manifest last) and the dataset
is published in the catalog as its job would, so trainer and inference tests do not depend on ingestion
timing.
"""

from __future__ import annotations

import contextlib
import json
from functools import cache
from pathlib import Path

from quakestack.data.manifest import manifest_json, manifest_size, manifest_windows
from quakestack.data.pipeline import DatasetSpec, SourceSpec, run_dataset
from quakestack.data.split import SplitSpec
from quakestack.data.synthetic import write_stead
from quakestack.data.windows import WindowSpec
from quakestack.errors import NotFound
from quakestack.layout import dataset_file_key, manifest_key
from quakestack.metadata.database import Database
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.storage import ObjectStore


@cache
def _built(root: str, n_events: int, n_noise: int, seed: int, length_s: float, vs_km_s: float | None = None,
           noise_scale: float = 1.0) -> str:
    network = "" if vs_km_s is None and noise_scale == 1.0 else f"-vs{vs_km_s}-noise{noise_scale}"
    out = Path(root) / f"stead-{n_events}-{n_noise}-{seed}-{length_s}{network}"
    if (out / "dataset" / "manifest.json").exists():
        return str(out / "dataset")
    other = {"noise_scale": noise_scale, **({"vs_km_s": vs_km_s} if vs_km_s is not None else {})}
    pairs = write_stead(str(out / "raw"), n_events=n_events, n_noise=n_noise, seed=seed, **other)
    spec = DatasetSpec(name="synthetic", sources=[SourceSpec("stead", [h for h, _ in pairs], [c for _, c in pairs])],
                       window=WindowSpec(length_s=length_s), split=SplitSpec(0.7, 0.15, 0.15), shard_size=256,
                       seed=seed)
    run_dataset(spec, str(out / "dataset"))
    return str(out / "dataset")


def publish_synthetic_dataset(store: ObjectStore, db: Database, name: str, root: Path, *, n_events: int = 300,
                              n_noise: int = 30, seed: int = 1, length_s: float = 60.0,
                              vs_km_s: float | None = None, noise_scale: float = 1.0) -> dict:
    """Build (cached per session) and publish under datasets/<name>/ (replacing a dataset of that name, as a
    delete and a new ingestion would); returns the manifest. ``vs_km_s``/``noise_scale``: another network."""
    directory = Path(_built(str(root), n_events, n_noise, seed, length_s, vs_km_s, noise_scale))
    manifest = json.loads((directory / "manifest.json").read_text())
    for shard in manifest["shards"]:
        for info in shard["files"].values():
            store.put_file(dataset_file_key(name, info["key"]), directory / info["key"], sha256=info["sha256"])
    manifest["name"] = name
    text = manifest_json(manifest).encode()
    store.put_bytes(manifest_key(name), text, content_type="application/json")
    catalog = DatasetCatalog(db)
    with contextlib.suppress(NotFound):
        catalog.delete(name)
    writer = f"test-{name}"
    catalog.claim(name, writer, lambda job_id, claimed_at: False)
    catalog.publish(name, writer, text, manifest_windows(manifest), manifest_size(manifest))
    return manifest
