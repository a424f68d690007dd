"""STEAD reader + pipeline on the REAL metadata rows of stead_100samples.csv (synthetic waveforms)."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from quakestack.data import (
    DatasetSpec,
    DataSourceError,
    FilterSpec,
    SourceSpec,
    SplitSpec,
    WindowSpec,
    apply_filters,
    plan_dataset,
    read_shard,
    run_dataset,
)
from quakestack.data.readers import stead
from quakestack.data.records import ItemRef, Skipped, TraceRecord, parse_float_list
from quakestack.data.synthetic import write_stead, write_stead_from_metadata
from tests.conftest import SHARED_DATA

REAL_CSV = str(SHARED_DATA / "stead_100samples.csv")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    out = tmp_path_factory.mktemp("stead_real")
    h5_path, csv_path = write_stead_from_metadata(REAL_CSV, str(out), seed=7)
    return h5_path, csv_path


@pytest.fixture(scope="module")
def rows():
    with open(REAL_CSV, newline="") as fh:
        return list(csv.DictReader(fh))


def _items(pairs):
    got = stead.list_pairs(pairs)
    return [x for x in got if isinstance(x, ItemRef)], [x for x in got if isinstance(x, Skipped)]


def test_labels_equal_csv_values(real, rows):
    items, skipped = _items([real])
    assert skipped == [] and len(items) == len(rows) == 100
    by_name = {it.trace_name: it for it in items}
    for row in rows:
        it = by_name[row["trace_name"]]
        assert it.p_arrival_sample == float(row["p_arrival_sample"])
        assert it.s_arrival_sample == float(row["s_arrival_sample"])
        assert it.magnitude == float(row["source_magnitude"])
        assert it.magnitude_type == row["source_magnitude_type"].lower()
        assert it.distance_km == float(row["source_distance_km"])
        assert it.event_id == row["source_id"]
        assert it.station == f"{row['network_code']}.{row['receiver_code']}."
        snr = parse_float_list(row["snr_db"])
        assert it.snr_db_components == snr and it.snr_db == pytest.approx(np.mean(snr))
        assert str(it.start_time).startswith(row["trace_start_time"].replace(" ", "T")[:19])
        assert it.category == "earthquake" and it.extra["trace_category_raw"] == "earthquake_local"
        # 'None' as text is absent, never the string "None"
        author = row["source_magnitude_author"]
        assert it.extra.get("source_magnitude_author") == (None if author in ("None", "") else author)


def test_load_reorders_enz_to_zne(real):
    items, _ = _items([real])
    recs = stead.load_many(items[:5])
    with h5py.File(real[0], "r") as f:
        for it, rec in zip(items[:5], recs, strict=True):
            assert isinstance(rec, TraceRecord)
            raw = f["data"][it.trace_name][()]
            assert rec.data.shape == (3, 6000) and rec.data.dtype == np.float32
            assert rec.component_order == "ZNE"
            np.testing.assert_array_equal(rec.data[0], raw[:, 2])
            np.testing.assert_array_equal(rec.data[2], raw[:, 0])


def test_magnitude_scale_filter_counts(real):
    items, _ = _items([real])
    counts = {t: len(apply_filters(items, FilterSpec(magnitude_types=[t]))[0]) for t in ("ml", "MB", "Mw")}
    assert counts == {"ml": 97, "MB": 2, "Mw": 1}
    kept, dropped = apply_filters(items, FilterSpec(magnitude_types=["ML", "mb"]))
    assert len(kept) == 99 and dropped == {"filtered: magnitude type not selected": 1}


def test_every_row_accounted_and_shard_labels(real, rows, tmp_path):
    spec = DatasetSpec(
        name="real",
        sources=[SourceSpec("stead", [real[0]], [real[1]])],
        shard_size=30,
        split=SplitSpec(0.8, 0.1, 0.1),
    )
    m = run_dataset(spec, str(tmp_path))
    assert m["counts"]["written"] + m["counts"]["skipped"] == 100
    assert m["counts"]["written"] == 100
    frames = [read_shard(os.path.join(tmp_path, s["key"]))[1] for s in m["shards"]]
    meta = pd.concat(frames).set_index("trace_source_name")
    assert len(meta) == 100
    for row in rows:
        r = meta.loc[row["trace_name"]]
        assert r.trace_p_arrival_sample == float(row["p_arrival_sample"])
        assert r.trace_s_arrival_sample == float(row["s_arrival_sample"])
        assert r.source_magnitude == float(row["source_magnitude"])
        assert r.source_magnitude_type == row["source_magnitude_type"]
        assert str(r.source_id) == row["source_id"]
    # events never straddle splits
    assert meta.groupby("source_id")["split"].nunique().max() == 1
    assert sum(m["magnitude_histogram"]["counts"]) == 100


def test_bad_traces_are_skipped_and_counted(real, tmp_path):
    h5_path = str(tmp_path / "bad.hdf5")
    csv_path = str(tmp_path / "bad.csv")
    shutil.copyfile(real[0], h5_path)
    shutil.copyfile(real[1], csv_path)
    names = [it.trace_name for it in _items([real])[0]]
    with h5py.File(h5_path, "r+") as f:
        g = f["data"]
        del g[names[0]]  # listed in CSV, missing from HDF5
        del g[names[1]]
        g.create_dataset(names[1], data=np.ones((6000, 2), np.float32))  # wrong shape
        x = g[names[2]][()]
        x[100, 1] = np.nan
        g[names[2]][...] = x
        x = g[names[3]][()]
        x[5, 0] = np.inf
        g[names[3]][...] = x
        g[names[4]][...] = 0.0  # all-zero
        del g[names[5]]
        g.create_dataset(names[5], data=np.zeros((0, 3), np.float32))  # zero-length
    spec = DatasetSpec(name="bad", sources=[SourceSpec("stead", [h5_path], [csv_path])], shard_size=50)
    m = run_dataset(spec, str(tmp_path / "out"))
    assert m["counts"]["written"] == 94
    assert m["skipped"] == {
        "trace listed in metadata CSV but missing from HDF5 file": 1,
        "wrong shape, expected (n_samples, 3) ENZ": 1,
        "non-finite samples (NaN/inf)": 2,
        "all-zero trace": 1,
        "zero-length trace": 1,
    }
    recs = stead.load_many(_items([(h5_path, csv_path)])[0][:6])
    msgs = [r.message for r in recs]
    assert msgs[0] == f"bad.hdf5: {names[0]}: trace listed in metadata CSV but missing from HDF5 file"
    assert "shape (6000, 2)" in msgs[1]
    assert "1 of 18000 samples" in msgs[2]


def test_csv_missing_columns(real, tmp_path):
    df = pd.read_csv(real[1], dtype=str, keep_default_na=False).drop(columns=["trace_name", "receiver_code"])
    bad_csv = tmp_path / "nocols.csv"
    df.to_csv(bad_csv, index=False)
    with pytest.raises(DataSourceError) as e:
        stead.list_pairs([(real[0], str(bad_csv))])
    assert "nocols.csv" in str(e.value)
    assert "missing required columns: trace_name, receiver_code" in str(e.value)


def test_corrupt_and_truncated_hdf5(real, tmp_path):
    trunc = tmp_path / "trunc.hdf5"
    shutil.copyfile(real[0], trunc)
    os.truncate(trunc, os.path.getsize(trunc) // 2)
    with pytest.raises(DataSourceError, match=r"trunc.hdf5: cannot open HDF5 file: .*truncated"):
        stead.list_pairs([(str(trunc), real[1])])
    garbage = tmp_path / "garbage.hdf5"
    garbage.write_bytes(b"not an hdf5 file" * 100)
    with pytest.raises(DataSourceError, match="garbage.hdf5: cannot open HDF5 file"):
        plan_dataset(DatasetSpec(name="g", sources=[SourceSpec("stead", [str(garbage)], [real[1]])]))


def test_synthetic_stead_chunks_noise_and_windows(tmp_path):
    pairs = write_stead(str(tmp_path / "syn"), n_events=60, n_noise=20, seed=3, chunks=2)
    assert [os.path.basename(p) for pair in pairs for p in pair] == [
        "chunk1.hdf5",
        "chunk1.csv",
        "chunk2.hdf5",
        "chunk2.csv",
    ]
    items, skipped = _items(pairs)
    assert not skipped and len(items) == 80
    assert sum(it.is_noise for it in items) == 20
    assert all(it.magnitude is None and it.p_arrival_sample is None for it in items if it.is_noise)
    text = Path(pairs[0][1]).read_text()
    assert "[[ " in text and "earthquake_local" in text and ",noise," in text
    spec = DatasetSpec(
        name="syn",
        sources=[SourceSpec("stead", [p[0] for p in pairs], [p[1] for p in pairs])],
        window=WindowSpec(length_s=30.0, p_offset_range_s=(1.0, 3.0)),
        shard_size=100,
        split=SplitSpec(1, 0, 0),
    )
    m = run_dataset(spec, str(tmp_path / "out"))
    x, meta = read_shard(str(tmp_path / "out" / m["shards"][0]["key"]))
    assert x.shape == (80, 3, 3000)
    ev = meta[meta.trace_category == "earthquake"]
    assert ev.trace_p_arrival_sample.between(100, 300).all() and ev.trace_p_arrival_sample.nunique() > 5
    assert meta[meta.trace_category == "noise"].trace_p_arrival_sample.isna().all()
