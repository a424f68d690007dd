"""Shards: SeisBench compatibility, byte determinism, resume, SeisBench-format input (blocks, chunks)."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from quakestack.data import (
    DatasetSpec,
    SourceSpec,
    SplitSpec,
    WindowSpec,
    plan_dataset,
    read_manifest,
    read_shard,
    render_shard,
    run_dataset,
)
from quakestack.data.readers import seisbench as sb_reader
from quakestack.data.records import ItemRef
from quakestack.data.synthetic import write_stead


@pytest.fixture(scope="module")
def stead_pairs(tmp_path_factory):
    return write_stead(str(tmp_path_factory.mktemp("syn")), n_events=70, n_noise=20, seed=5, chunks=2)


def _spec(pairs, **kw):
    kw.setdefault("shard_size", 40)
    return DatasetSpec(
        name="d", sources=[SourceSpec("stead", [p[0] for p in pairs], [p[1] for p in pairs])], seed=1, **kw
    )


def _files(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            if n != "manifest.json":
                p = os.path.join(d, n)
                out[os.path.relpath(p, root)] = Path(p).read_bytes()
    return out


def test_same_spec_twice_gives_byte_identical_shards(stead_pairs, tmp_path):
    m1 = run_dataset(_spec(stead_pairs), str(tmp_path / "a"))
    m2 = run_dataset(_spec(stead_pairs), str(tmp_path / "b"), max_workers=2)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(a) == 2 * len(m1["shards"]) and a == b
    m1.pop("created_at"), m2.pop("created_at")
    assert m1 == m2
    assert read_manifest(str(tmp_path / "a" / "manifest.json"))["shards"] == m1["shards"]
    assert m1["counts"] == {"listed": 90, "selected": 90, "written": 90, "skipped": 0, "gap_filled_windows": 0,
                           "gap_filled_samples": 0}
    assert sum(s["count"] for s in m1["splits"].values()) == 90
    assert {c for s in m1["splits"].values() for c in s["categories"]} == {"earthquake", "noise"}


def test_shard_layout_and_seisbench_opens_it(stead_pairs, tmp_path):
    m = run_dataset(_spec(stead_pairs, dtype="float32"), str(tmp_path))
    key = m["shards"][0]["key"]
    shard = tmp_path / key
    assert key.startswith("shards/train/00000")
    with h5py.File(shard / "waveforms.hdf5", "r") as f:
        assert list(f["data"]) == ["bucket0"] and f["data/bucket0"].shape == (40, 3, 6000)
        assert f["data_format/dimension_order"][()] == b"CW"
        assert f["data_format/component_order"][()] == b"ZNE"
        assert f["data_format/sampling_rate"][()] == 100.0
    x, meta = read_shard(str(shard))
    assert meta.trace_name[3] == "bucket0$3,:3,:6000"
    sbd = pytest.importorskip("seisbench.data")
    ds = sbd.WaveformDataset(str(shard), component_order="ZNE", dimension_order="NCW", sampling_rate=100)
    assert len(ds) == 40
    np.testing.assert_array_equal(ds.get_waveforms(np.arange(40)), x)
    for col in ("trace_p_arrival_sample", "trace_s_arrival_sample", "source_magnitude"):
        np.testing.assert_array_equal(ds.metadata[col].to_numpy(float), meta[col].to_numpy(float))
    assert list(ds.metadata.trace_category) == list(meta.trace_category)


def test_float16_and_resume(stead_pairs, tmp_path):
    spec = _spec(stead_pairs, dtype="float16")
    plan = plan_dataset(spec)
    first = render_shard(plan.shards[0], spec, str(tmp_path))
    raw, meta = read_shard(os.path.join(tmp_path, first.key), rescale=False)
    assert raw.dtype == np.float16 and np.isfinite(raw).all() and not first.reused
    assert (meta.trace_amplitude_scale > 1).any()  # big synthetic events need a power-of-two scale
    x, _ = read_shard(os.path.join(tmp_path, first.key))
    f32 = render_shard(plan_dataset(_spec(stead_pairs)).shards[0], _spec(stead_pairs), str(tmp_path / "f32"))
    x32, _ = read_shard(os.path.join(tmp_path / "f32", f32.key))
    assert x.dtype == np.float32 and np.allclose(x, x32, rtol=2e-3, atol=1e-2 * np.abs(x32).max())
    again = render_shard(plan_dataset(spec).shards[0], spec, str(tmp_path))
    assert again.reused and again.sha256 == first.sha256 and again.count == first.count
    # a changed parameter changes the plan hash, so the shard is rebuilt
    other = _spec(stead_pairs, dtype="float32")
    assert plan_dataset(other).shards[0].plan_sha256 != plan.shards[0].plan_sha256
    assert not render_shard(plan_dataset(other).shards[0], other, str(tmp_path)).reused


def test_plan_hash_ignores_download_directory(stead_pairs, tmp_path):
    import shutil

    moved = []
    for h5, csv_path in stead_pairs:
        moved.append((shutil.copy(h5, tmp_path), shutil.copy(csv_path, tmp_path)))
    a = [s.plan_sha256 for s in plan_dataset(_spec(stead_pairs)).shards]
    b = [s.plan_sha256 for s in plan_dataset(_spec(moved)).shards]
    assert a == b


def test_our_shards_read_back_through_seisbench_reader(stead_pairs, tmp_path):
    m = run_dataset(_spec(stead_pairs, split=SplitSpec(1.0, 0.0, 0.0), shard_size=100), str(tmp_path / "ds"))
    shard = str(tmp_path / "ds" / m["shards"][0]["key"])
    x, meta = read_shard(shard)
    spec = DatasetSpec(
        name="again", sources=[SourceSpec("seisbench", [shard])], shard_size=100, split=SplitSpec(1.0, 0.0, 0.0)
    )
    m2 = run_dataset(spec, str(tmp_path / "again"))
    x2, meta2 = read_shard(str(tmp_path / "again" / m2["shards"][0]["key"]))
    order = {n: i for i, n in enumerate(meta.trace_name)}
    idx = [order[n] for n in meta2.trace_source_name]
    np.testing.assert_array_equal(x2, x[idx])
    np.testing.assert_array_equal(meta2.trace_p_arrival_sample.to_numpy(), meta.trace_p_arrival_sample.to_numpy()[idx])


def test_seisbench_individual_traces_chunks_and_bad_rate(tmp_path):
    """A chunked SeisBench dataset with per-trace datasets in WC order, one at the wrong sampling rate."""
    rng = np.random.default_rng(0)
    for chunk in ("_a", "_b"):
        rows = []
        with h5py.File(tmp_path / f"waveforms{chunk}.hdf5", "w") as f:
            g = f.create_group("data_format")
            g.create_dataset("dimension_order", data="WC")
            g.create_dataset("component_order", data="ZNE")
            d = f.create_group("data")
            for i in range(4):
                name = f"tr{chunk}{i}"
                d.create_dataset(name, data=rng.standard_normal((3000, 3)).astype(np.float32))
                rows.append(
                    {
                        "trace_name": name,
                        "trace_sampling_rate_hz": 50.0 if i == 3 else 100.0,
                        "trace_p_arrival_sample": 1000 + i,
                        "source_magnitude": 2.0 + i,
                        "source_magnitude_type": "ML",
                        "trace_category": "earthquake",
                        "source_id": f"ev{chunk}{i}",
                        "station_network_code": "XX",
                        "station_code": "ABC",
                    }
                )
        pd.DataFrame(rows).to_csv(tmp_path / f"metadata{chunk}.csv", index=False)
    assert sb_reader.find_chunks(str(tmp_path)) == ["_a", "_b"]
    items = [x for x in sb_reader.list_directories([str(tmp_path)]) if isinstance(x, ItemRef)]
    assert len(items) == 8 and items[0].station == "XX.ABC."
    rec = sb_reader.load(items[0])
    with h5py.File(tmp_path / "waveforms_a.hdf5", "r") as f:
        np.testing.assert_array_equal(rec.data, f["data/tr_a0"][()].T)
    spec = DatasetSpec(
        name="sb",
        sources=[SourceSpec("seisbench", [str(tmp_path)])],
        window=WindowSpec(length_s=30.0),
        split=SplitSpec(1.0, 0.0, 0.0),
    )
    m = run_dataset(spec, str(tmp_path / "out"))
    assert m["counts"]["written"] == 6
    assert m["skipped"] == {"wrong sampling rate (resampling disabled)": 2}
