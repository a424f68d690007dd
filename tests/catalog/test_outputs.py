"""QuakeML that obspy.read_events reads back identically, CSV tables, and evaluation with plots."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import obspy
import pytest

from quakestack.catalog.associate import associate, network_magnitude
from quakestack.catalog.evaluate import evaluate_catalog, evaluation_plots, match_events, read_reference
from quakestack.catalog.origin_quality import SearchVolume, add_origin_quality, azimuthal_gap
from quakestack.catalog.quakeml import EDGE_COMMENT, events_csv, picks_csv, quakeml_bytes
from quakestack.catalog.types import CatalogEvent, PhasePick
from quakestack.data.synthetic import write_catalog
from tests.catalog.test_associate import _stations, _truth_picks


def test_quakeml_round_trip_csv_and_evaluation(network, tmp_path) -> None:
    events = associate(_truth_picks(network, np.random.default_rng(2)), _stations(network))
    for k, ev in enumerate(events):
        network_magnitude(ev, {p.station: 2.0 + 0.1 * k + 0.01 * i for i, (p, _) in enumerate(ev.picks)})
    data = quakeml_bytes(events)
    back = obspy.read_events(io.BytesIO(data))
    assert len(back) == len(events)
    for ours, theirs in zip(events, back, strict=True):
        origin = theirs.preferred_origin()
        assert abs(origin.time.timestamp - ours.origin_time) < 1e-4
        assert abs(origin.latitude - ours.latitude) < 1e-5 and abs(origin.depth / 1000 - ours.depth_km) < 1e-3
        assert len(theirs.picks) == len(ours.picks) == len(origin.arrivals)
        assert sorted((p.waveform_id.station_code, p.phase_hint, round(p.time.timestamp, 3)) for p in theirs.picks) \
            == sorted((p.station.split(".")[1], p.phase, round(p.time, 3)) for p, _ in ours.picks)
        quality = origin.quality  # how well it is constrained, as QuakeML says it
        assert quality.associated_phase_count == len(ours.picks) == quality.used_phase_count
        assert quality.associated_station_count == len({p.station for p, _ in ours.picks}) >= 4
        assert quality.azimuthal_gap < 180.0 and 0 < quality.standard_error < 1.5  # inside the ring, tolerance
        assert 0 < quality.minimum_distance <= quality.maximum_distance < 1.0
        assert all(a.distance is not None and 0 <= a.azimuth < 360 for a in origin.arrivals)
        assert not [c for c in origin.comments if c.text.startswith(EDGE_COMMENT)]
        mag = theirs.preferred_magnitude()
        assert abs(mag.mag - ours.magnitude) < 1e-4 and mag.station_count == ours.magnitude_count
        assert len(theirs.station_magnitudes) == len(ours.station_magnitudes)
        assert len(mag.station_magnitude_contributions) == ours.magnitude_count
    # writing what ObsPy read gives the same document again
    again = io.BytesIO()
    back.write(again, format="QUAKEML")
    assert obspy.read_events(io.BytesIO(again.getvalue())) == back

    rows = list(csv.DictReader(io.StringIO(events_csv(events).decode())))
    assert len(rows) == len(events) and float(rows[0]["magnitude"]) == round(events[0].magnitude, 3)
    assert all(int(r["n_stations"]) >= 4 and float(r["azimuthal_gap_deg"]) < 180 and r["search_edge"] == ""
               for r in rows)
    assert len(list(csv.DictReader(io.StringIO(picks_csv(events).decode())))) == sum(len(e.picks) for e in events)

    # evaluation against the truth, as QuakeML and as CSV: identical figures
    truth_csv = write_catalog(network.events, str(tmp_path / "truth.csv"), "csv")
    for path in (network.catalog_path, truth_csv):
        reference = read_reference(Path(path).read_bytes(), path)
        assert len(reference) == len(network.events)
        figures = evaluate_catalog(events, reference)
        assert figures["precision"] == 1.0 and figures["recall"] == 1.0
        assert figures["origin_time_error_median_s"] < 0.3 and figures["epicentral_error_median_km"] < 3.0
        assert np.isfinite(figures["magnitude_rmse"]) and figures["magnitude_matched"] == len(events)
    plots = evaluation_plots(events, reference, network.stations, match_events(events, reference))
    assert set(plots) == {"event_map.png", "magnitudes.png"}
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in plots.values())
    # a shifted catalog matches nothing at 2 s
    for ev in events:
        ev.origin_time += 5.0
    assert evaluate_catalog(events, reference)["recall"] == 0.0


def test_an_origin_on_the_edge_of_the_search_volume_is_flagged_with_its_gap(network) -> None:
    """Picks of one side of the network only, located where the grid search ends: once an identical hypocentre
    for two events, outside the network, with nothing in the QuakeML to notice it by."""
    stations = _stations(network)
    volume = SearchVolume.around(stations, margin_km=50.0, max_depth_km=30.0)
    west = sorted(stations.values(), key=lambda s: s.longitude)[:3]
    event = CatalogEvent("smi:x/event/edge", 0.0, float(np.mean(volume.lat)), volume.lon[0] + 0.001, 29.5,
                         [(PhasePick(name, "P", 10.0 + i, 0.9), 0.2 * (i - 1))
                          for i, name in enumerate(n for n, s in stations.items() if s in west)])
    add_origin_quality(event, stations, volume)
    assert event.search_edge == "west, bottom"
    assert event.azimuthal_gap_deg > 180.0 and event.station_count == 3
    assert event.rms_residual_s == pytest.approx(np.sqrt(0.08 / 3))
    origin = obspy.read_events(io.BytesIO(quakeml_bytes([event])))[0].preferred_origin()
    assert [c.text for c in origin.comments] == [f"{EDGE_COMMENT} west, bottom"]
    assert origin.quality.azimuthal_gap == pytest.approx(event.azimuthal_gap_deg, abs=0.01)
    assert next(csv.DictReader(io.StringIO(events_csv([event]).decode())))["search_edge"] == "west, bottom"
    assert azimuthal_gap([10.0]) == 360.0 and azimuthal_gap([0.0, 90.0, 180.0, 270.0]) == 90.0
