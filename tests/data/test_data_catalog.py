"""miniSEED + QuakeML / Nordic / CSV picks: windows hold P at the requested offset, noise holds no pick."""

from __future__ import annotations

import csv
import os
import shutil

import numpy as np
import obspy
import pytest
from obspy import UTCDateTime

from quakestack.data import (
    DatasetSpec,
    DataSourceError,
    PreprocessSpec,
    SourceSpec,
    SplitSpec,
    WindowSpec,
    plan_dataset,
    read_shard,
    render_shard,
)
from quakestack.data.readers import waveform_catalog as wc
from quakestack.data.synthetic import write_catalog, write_continuous

RATE = 100.0
OFFSET_S = 4.0
LENGTH_S = 20.0


@pytest.fixture(scope="module")
def cont(tmp_path_factory):
    out = tmp_path_factory.mktemp("cont")
    paths, qml, truth = write_continuous(
        str(out), seed=11, duration_s=1200, n_events=5, catalog_formats=("nordic", "csv")
    )
    return str(out), paths, qml, truth


def _spec(paths, cat, fmt, **kw):
    window = kw.pop("window", WindowSpec(length_s=LENGTH_S, p_offset_s=OFFSET_S))
    return DatasetSpec(
        name="c",
        sources=[SourceSpec("waveform_catalog", paths, catalog_path=cat, catalog_format=fmt)],
        window=window,
        shard_size=1000,
        split=SplitSpec(1.0, 0.0, 0.0),
        max_noise_per_stream=6,
        **kw,
    )


def _onset_at(z: np.ndarray, p: int) -> bool:
    """The synthetic P onset is sharp: the first difference jumps at sample p and nowhere in the 2 s before."""
    d = np.abs(np.diff(z.astype(np.float64)))
    return bool(d[p - 1 : p + 3].max() > 3 * d[p - 200 : p - 1].max())


def _render(spec, out):
    plan = plan_dataset(spec)
    assert len(plan.shards) == 1
    res = render_shard(plan.shards[0], spec, str(out))
    x, meta = read_shard(os.path.join(out, res.key))
    return plan, res, x, meta


@pytest.mark.parametrize("fmt", ["quakeml", "nordic", "csv"])
def test_event_windows_hold_p_at_offset_and_noise_is_pick_free(cont, fmt, tmp_path):
    out, paths, qml, truth = cont
    cat = {"quakeml": qml, "nordic": os.path.join(out, "catalog.nordic"), "csv": os.path.join(out, "catalog.csv")}[fmt]
    plan, res, x, meta = _render(_spec(paths, cat, fmt), tmp_path)
    assert plan.skipped == [] and res.skipped == {}
    ev = meta[meta.trace_category == "earthquake"]
    assert len(ev) == 5 * len(paths)  # one item per event x station
    assert (ev.trace_p_arrival_sample == OFFSET_S * RATE).all()
    assert ev.source_magnitude.notna().all() and (ev.source_magnitude_type.str.lower() == "ml").all()
    p = int(OFFSET_S * RATE)
    for i in ev.index:
        assert _onset_at(x[i, 0], p)
        assert not _onset_at(x[i, 0], p + 10) and not _onset_at(x[i, 0], p - 10)  # the check is sharp
    # every truth P pick is found, at the right time
    picks = {
        (pk["seed_id"].rsplit(".", 1)[0], str(pk["time"])) for e in truth for pk in e["picks"] if pk["phase"] == "P"
    }
    got = {
        (
            f"{r.station_network_code}.{r.station_code}.{int(r.station_location_code):02d}",
            str(UTCDateTime(r.trace_start_time) + OFFSET_S),
        )
        for r in ev.itertuples()
    }
    assert got == picks
    noise = meta[meta.trace_category == "noise"]
    assert len(noise) > 0 and noise.trace_p_arrival_sample.isna().all()
    all_picks = np.array([float(pk["time"].timestamp) for e in truth for pk in e["picks"]])
    for r in noise.itertuples():
        t0 = float(UTCDateTime(r.trace_start_time).timestamp)
        assert not ((all_picks >= t0 - 30) & (all_picks <= t0 + LENGTH_S + 30)).any()


def test_random_offsets_are_seeded_and_aligned(cont, tmp_path):
    out, paths, qml, truth = cont
    window = WindowSpec(length_s=LENGTH_S, p_offset_range_s=(2.0, 8.0), include_noise=False)
    _, _, x, meta = _render(_spec(paths, qml, "quakeml", window=window), tmp_path / "a")
    _, _, x2, meta2 = _render(_spec(paths, qml, "quakeml", window=window), tmp_path / "b")
    np.testing.assert_array_equal(x, x2)
    p = meta.trace_p_arrival_sample.to_numpy()
    assert np.all((p >= 200) & (p <= 800)) and len(set(p)) > 3 and np.all(p == np.round(p))
    for i, pi in enumerate(p.astype(int)):
        assert _onset_at(x[i, 0], pi)


def test_preprocessing_bandpass_and_resampling(cont, tmp_path):
    out, paths, qml, truth = cont
    window = WindowSpec(length_s=LENGTH_S, sampling_rate=50.0, p_offset_s=OFFSET_S, include_noise=False)
    pre = PreprocessSpec(detrend="demean", taper_fraction=0.05, freqmin=1.0, freqmax=20.0, resample=True)
    _, res, x, meta = _render(_spec(paths, qml, "quakeml", window=window, preprocess=pre), tmp_path)
    assert res.count == 15 and x.shape == (15, 3, 1000)
    assert (meta.trace_p_arrival_sample == OFFSET_S * 50.0).all() and (meta.trace_sampling_rate_hz == 50.0).all()
    # without resampling, the 100 Hz data is refused with a counted reason
    _, res, _, _ = _render(_spec(paths, qml, "quakeml", window=window), tmp_path / "nores")
    assert res.count == 0 and res.skipped == {"wrong sampling rate (resampling disabled)": 15}
    assert "100 Hz, requested 50 Hz" in res.skipped_examples[0]


def test_pick_matching_no_waveform_is_counted(cont, tmp_path):
    out, paths, qml, truth = cont
    events = [dict(e, picks=list(e["picks"])) for e in truth]
    events[0]["picks"].append({"seed_id": "XS.NOPE.00.HHZ", "phase": "P", "time": events[0]["picks"][0]["time"]})
    events[1]["picks"].append({"seed_id": "XS.ALFA.00.HHZ", "phase": "P", "time": UTCDateTime(2030, 1, 1)})
    cat = write_catalog(events, str(tmp_path / "extra.csv"), "csv")
    plan = plan_dataset(_spec(paths, cat, "csv"))
    assert plan.skipped_counts == {"pick matches no waveform": 2}
    assert any("XS.NOPE.00.HHZ" in s.message for s in plan.skipped)


def test_pick_on_hh_selects_hh_stream_only(cont, tmp_path):
    out, paths, qml, truth = cont
    st = obspy.read(paths[0])
    for tr in st:
        tr.stats.channel = "BH" + tr.stats.channel[-1]
    bh = str(tmp_path / "bh.mseed")
    st.write(bh, format="MSEED", encoding="FLOAT32")
    groups = wc.scan_waveforms([paths[0], bh])
    assert sorted(groups) == ["XS.ALFA.00.BH", "XS.ALFA.00.HH"]
    assert wc._matches("XS.ALFA.00.HHZ", "XS.ALFA.00.HH") and not wc._matches("XS.ALFA.00.HHZ", "XS.ALFA.00.BH")
    assert wc._matches(".ALFA..HZ", "XS.ALFA.00.HH")  # old Nordic: no network/location, 2-letter channel


def test_truncated_and_garbage_miniseed(cont, tmp_path):
    out, paths, qml, truth = cont
    trunc = tmp_path / "trunc.mseed"
    shutil.copyfile(paths[0], trunc)
    os.truncate(trunc, os.path.getsize(trunc) // 2 + 1000)
    with pytest.raises(DataSourceError, match=r"trunc.mseed: truncated miniSEED: file size \d+ bytes is not a mult"):
        plan_dataset(_spec([str(trunc)] + paths[1:], qml, "quakeml"))
    garbage = tmp_path / "garbage.mseed"
    garbage.write_bytes(os.urandom(3000))
    with pytest.raises(DataSourceError, match="garbage.mseed: cannot read waveform file"):
        plan_dataset(_spec([str(garbage)], qml, "quakeml"))


def test_catalog_errors(cont, tmp_path):
    out, paths, qml, truth = cont
    bad = tmp_path / "picks.csv"
    with open(bad, "w", newline="") as fh:
        csv.writer(fh).writerows([["station", "phase"], ["ALFA", "P"]])
    with pytest.raises(DataSourceError, match="picks.csv: pick CSV is missing required columns: seed_id, time"):
        plan_dataset(_spec(paths, str(bad), "csv"))
    broken = tmp_path / "broken.xml"
    broken.write_text("<quakeml><eventParameters>")
    with pytest.raises(DataSourceError, match="broken.xml: cannot read quakeml catalog"):
        plan_dataset(_spec(paths, str(broken), "quakeml"))


def test_gaps_filled_or_dropped(cont, tmp_path):
    out, paths, qml, truth = cont
    st = obspy.read(paths[0])
    p_time = next(pk["time"] for pk in truth[0]["picks"] if pk["seed_id"].startswith("XS.ALFA") and pk["phase"] == "P")
    gapped = obspy.Stream()
    for tr in st:
        gapped += tr.slice(endtime=p_time + 6.0)
        gapped += tr.slice(starttime=p_time + 9.0)
    gpath = str(tmp_path / "XS.ALFA.00.mseed")
    gapped.write(gpath, format="MSEED", encoding="FLOAT32")
    window = WindowSpec(length_s=LENGTH_S, p_offset_s=OFFSET_S, include_noise=False)
    spec = _spec([gpath], qml, "quakeml", window=window, preprocess=PreprocessSpec(gap_policy="drop"))
    _, res, _, _ = _render(spec, tmp_path / "drop")
    assert res.skipped == {"gap in data (gap policy 'drop')": 1} and res.count == 4
    spec = _spec([gpath], qml, "quakeml", window=window, preprocess=PreprocessSpec(gap_policy="zeros"))
    _, res, x, meta = _render(spec, tmp_path / "zeros")
    assert res.count == 5 and np.isfinite(x).all()
    spec = _spec([gpath], qml, "quakeml", window=window, preprocess=PreprocessSpec(gap_policy="interpolate"))
    _, res, x, _ = _render(spec, tmp_path / "interp")
    assert res.count == 5 and np.isfinite(x).all()
