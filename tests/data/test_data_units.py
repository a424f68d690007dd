"""Small units: splits, filters, clusters, windows, preprocessing, normalisation, metadata parsing."""

from __future__ import annotations

import numpy as np
import pytest
from obspy import UTCDateTime

from quakestack.data import (
    DatasetSpec,
    FilterSpec,
    PreprocessSpec,
    SourceSpec,
    SplitSpec,
    TraceRecord,
    WindowSpec,
    apply_filters,
    assign_splits,
    cut_window,
    normalize,
    preprocess,
)
from quakestack.data.clusters import assign_clusters
from quakestack.data.readers._common import check_array
from quakestack.data.records import ItemRef, Skipped, clean_float, parse_float_list
from quakestack.data.synthetic import hutton_boore_amplitude_nm


def _item(i, event=None, noise=False, mag=None, mtype=None, t=0.0, lat=None, lon=None, **kw):
    return ItemRef(
        reader="stead",
        source="/x/a.hdf5",
        locator={},
        trace_name=f"tr{i:04d}",
        station="XX.A.",
        category="noise" if noise else "earthquake",
        event_id=None if noise else event,
        magnitude=mag,
        magnitude_type=mtype,
        origin_time=UTCDateTime(2020, 1, 1) + t,
        source_latitude=lat,
        source_longitude=lon,
        **kw,
    )


def _rec(n=6000, p=1000.0, noise=False, rate=100.0, comps="ZNE"):
    data = np.random.default_rng(0).standard_normal((len(comps), n)).astype(np.float32)
    return TraceRecord(
        data=data,
        component_order=comps,
        sampling_rate=rate,
        trace_name="t",
        station="XX.A.",
        category="noise" if noise else "earthquake",
        p_arrival_sample=None if noise else p,
        s_arrival_sample=None if noise else p + 500,
        start_time=UTCDateTime(2020, 1, 1),
    )


def test_split_ratios_must_sum_to_one():
    with pytest.raises(
        ValueError,
        match=r"split ratios must sum to 1 \(within 1e-6\), got train=0.7 \+ val=0.2 "
        r"\+ test=0.2 = 1.1",
    ):
        SplitSpec(0.7, 0.2, 0.2)
    SplitSpec(0.7, 0.2, 0.1 + 1e-7)
    with pytest.raises(ValueError, match="non-negative"):
        SplitSpec(1.2, -0.1, -0.1)


def test_split_by_event_groups_and_ratios():
    items = [_item(i, event=f"e{i // 3}") for i in range(300)] + [_item(1000 + i, noise=True) for i in range(100)]
    names = assign_splits(items, SplitSpec(0.8, 0.1, 0.1), seed=4)
    per_event = {}
    for it, s in zip(items, names, strict=True):
        if it.event_id:
            per_event.setdefault(it.event_id, set()).add(s)
    assert all(len(v) == 1 for v in per_event.values())
    counts = {s: names.count(s) for s in ("train", "val", "test")}
    assert abs(counts["train"] - 320) <= 3 and abs(counts["val"] - 40) <= 3 and abs(counts["test"] - 40) <= 3
    assert names == assign_splits(items, SplitSpec(0.8, 0.1, 0.1), seed=4)
    assert names != assign_splits(items, SplitSpec(0.8, 0.1, 0.1), seed=5)
    assert set(assign_splits(items, SplitSpec(1.0, 0.0, 0.0))) == {"train"}


def test_split_by_time_puts_latest_in_test():
    items = [_item(i, event=f"e{i}", t=float((i * 37) % 100)) for i in range(100)]
    names = assign_splits(items, SplitSpec(0.6, 0.2, 0.2, by="time"))
    t = {s: [it.origin_time for it, n in zip(items, names, strict=True) if n == s] for s in ("train", "val", "test")}
    assert max(t["train"]) < min(t["val"]) and max(t["val"]) < min(t["test"])
    assert [len(t[s]) for s in ("train", "val", "test")] == [60, 20, 20]


def test_filters_and_noise_policy():
    items = [
        _item(0, "a", mag=2.0, mtype="ML"),
        _item(1, "b", mag=4.0, mtype="md"),
        _item(2, "c", mag=3.0, mtype="mb"),
        _item(3, noise=True),
        _item(4, "d", mtype="ml"),
    ]
    kept, dropped = apply_filters(items, FilterSpec(magnitude_types=["ml", "MD"], min_magnitude=2.5))
    assert [it.trace_name for it in kept] == ["tr0001", "tr0003"]  # noise passes magnitude filters
    assert dropped == {
        "filtered: magnitude type not selected": 1,
        "filtered: magnitude below minimum": 1,
        "filtered: no magnitude": 1,
    }
    kept, _ = apply_filters(items, FilterSpec(min_magnitude=1.0, noise_passes_event_filters=False))
    assert "tr0003" not in [it.trace_name for it in kept]
    kept, _ = apply_filters(items, FilterSpec(categories=["noise"]))
    assert [it.trace_name for it in kept] == ["tr0003"]
    many = [_item(i, f"e{i}") for i in range(50)]
    a, d = apply_filters(many, FilterSpec(max_items=10), seed=1)
    assert len(a) == 10 and d == {"filtered: over max_items": 40}
    assert a == apply_filters(many, FilterSpec(max_items=10), seed=1)[0]


def test_location_clusters():
    items = [_item(i, f"e{i}", lat=10.0 + (i % 2) * 5 + 0.01 * i, lon=20.0) for i in range(20)]
    items.append(_item(99, noise=True))
    assign_clusters(items, 2, seed=0)
    assert items[-1].location_cluster == -1
    south = {it.location_cluster for it in items[:-1] if it.source_latitude < 12}
    north = {it.location_cluster for it in items[:-1] if it.source_latitude > 12}
    assert south == {0} and north == {1}


def test_windows():
    spec = WindowSpec(length_s=30.0, p_offset_s=5.0)
    w = cut_window(_rec(p=1234.0), spec)
    assert w.data.shape == (3, 3000) and w.p_arrival_sample == 500.0 and w.s_arrival_sample == 1000.0
    np.testing.assert_array_equal(w.data, _rec().data[:, 734:3734])
    assert w.start_time == UTCDateTime(2020, 1, 1) + 7.34
    long = cut_window(_rec(n=2000), spec)
    assert isinstance(long, Skipped) and long.reason == "window longer than trace"
    assert long.detail == "3000 > 2000 samples"
    edge = cut_window(_rec(p=100.0), spec)
    assert isinstance(edge, Skipped) and edge.reason == "window does not fit in trace at the requested P offset"
    noise = cut_window(_rec(noise=True), spec)
    assert noise.p_arrival_sample is None and noise.data.shape == (3, 3000)
    keep = cut_window(_rec(p=777.0), WindowSpec(length_s=60.0))
    assert keep.p_arrival_sample == 777.0
    with pytest.raises(ValueError):
        WindowSpec(length_s=10, p_offset_range_s=(5.0, 12.0))


def test_preprocess_reorder_resample_and_checks():
    r = _rec(comps="ENZ")
    out = preprocess(r, PreprocessSpec(), 100.0)
    np.testing.assert_array_equal(out.data[0], r.data[2])
    one = preprocess(r, PreprocessSpec(component_order="Z"), 100.0)
    assert one.data.shape == (1, 6000) and one.component_order == "Z"
    z12 = preprocess(_rec(comps="Z12"), PreprocessSpec(), 100.0)
    assert z12.component_order == "ZNE"
    miss = preprocess(_rec(comps="Z"), PreprocessSpec(), 100.0)
    assert isinstance(miss, Skipped) and miss.reason == "missing component"
    wrong = preprocess(_rec(rate=40.0), PreprocessSpec(), 100.0)
    assert isinstance(wrong, Skipped) and wrong.detail == "40 Hz, requested 100 Hz"
    res = preprocess(
        _rec(rate=200.0),
        PreprocessSpec(resample=True, freqmin=1.0, freqmax=20.0, detrend="demean", taper_fraction=0.05),
        100.0,
    )
    assert res.data.shape == (3, 3000) and res.p_arrival_sample == 500.0 and res.sampling_rate == 100.0
    with pytest.raises(ValueError, match="gap_policy"):
        PreprocessSpec(gap_policy="ignore")


def test_check_array_and_normalize():
    assert check_array(np.zeros((3, 10)), "f", "t").reason == "all-zero trace"
    assert check_array(np.zeros((3, 0)), "f", "t").reason == "zero-length trace"
    x = np.ones((3, 10))
    x[1, 2] = np.nan
    assert check_array(x, "f", "t").message == "f: t: non-finite samples (NaN/inf) (1 of 30 samples)"
    y = np.random.default_rng(0).standard_normal((4, 3, 100)).astype(np.float32) * 50 + 3
    p = normalize(y, "peak")
    assert np.allclose(np.abs(p).max(axis=(1, 2)), 1.0) and p.dtype == np.float32
    s = normalize(y, "std")
    assert np.allclose(s.std(axis=-1).max(axis=-1), 1.0, atol=1e-5)
    assert normalize(y, "none") is y
    with pytest.raises(ValueError):
        normalize(y, "minmax")


def test_metadata_text_parsing_and_attenuation():
    assert parse_float_list("[ 56.79999924  55.40000153  47.40000153]") == (56.79999924, 55.40000153, 47.40000153)
    assert parse_float_list("[[ 2896.]]") == (2896.0,)
    assert parse_float_list("None") is None and clean_float("nan") is None and clean_float(" 700.0 ") == 700.0
    # Hutton & Boore: one magnitude unit = 10x amplitude; farther = smaller
    a = hutton_boore_amplitude_nm(np.array([2.0, 3.0]), 50.0)
    assert a[1] / a[0] == pytest.approx(10.0)
    assert hutton_boore_amplitude_nm(3.0, 100.0) < hutton_boore_amplitude_nm(3.0, 20.0)
    # ML 3 at 100 km is 1 mm on a Wood-Anderson (the definition of the scale's anchor)
    assert hutton_boore_amplitude_nm(3.0, 100.0) == pytest.approx(1.0e6, rel=1e-6)


def test_spec_validation():
    with pytest.raises(ValueError, match="source format"):
        SourceSpec("segy", ["x"])
    with pytest.raises(ValueError, match="catalog_path"):
        SourceSpec("waveform_catalog", ["x.mseed"])
    with pytest.raises(ValueError, match="dtype"):
        DatasetSpec(name="x", sources=[SourceSpec("stead", ["a.hdf5"])], dtype="int8")
