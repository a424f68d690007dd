"""PyOcto association in chunks (no event lost or doubled at chunk edges) and network magnitudes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quakestack.archive.inventory import StationCoordinates
from quakestack.catalog.associate import associate, association_parameters, first_p_per_station, network_magnitude
from quakestack.catalog.types import PhasePick
from quakestack.errors import InvalidArgument

from .conftest import MIDNIGHT_EVENT


def _stations(network) -> dict[str, StationCoordinates]:
    return {s.id: StationCoordinates(s.id, s.latitude, s.longitude, s.elevation_m) for s in network.stations}


def _truth_picks(network, rng) -> list[PhasePick]:
    picks = []
    for ev in network.events:
        for pk in ev["picks"]:
            jitter = float(rng.normal(0, 0.05))
            picks.append(PhasePick(pk["seed_id"].rsplit(".", 1)[0], pk["phase"], pk["time"].timestamp + jitter, 0.9))
    stations = list(_stations(network))
    for _ in range(20):  # false picks scattered in time
        picks.append(PhasePick(stations[int(rng.integers(len(stations)))], "P",
                               float(network.start.timestamp + rng.uniform(0, network.end - network.start)), 0.4))
    return picks


def _km(a_lat, a_lon, b_lat, b_lon) -> float:
    return math.hypot((a_lat - b_lat) * 111.19, (a_lon - b_lon) * 111.19 * math.cos(math.radians(a_lat)))


@pytest.mark.parametrize("chunk_s", [600.0, 86400.0])
def test_truth_picks_give_the_truth_events_once(network, chunk_s) -> None:
    picks = _truth_picks(network, np.random.default_rng(0))
    events = associate(picks, _stations(network), {"chunk_s": chunk_s, "overlap_s": 120.0})
    assert len(events) == len(network.events), [e.origin_time for e in events]
    for ev, truth in zip(events, network.events, strict=True):
        assert abs(ev.origin_time - truth["origin_time"].timestamp) < 0.5
        assert _km(ev.latitude, ev.longitude, truth["latitude"], truth["longitude"]) < 5.0
        assert len(ev.picks) >= 12 and all(p.probability == 0.9 for p, _ in ev.picks)
        assert len(first_p_per_station(ev)) >= 6
    assert sum(abs(e.origin_time - MIDNIGHT_EVENT.timestamp) < 1.0 for e in events) == 1


def test_network_magnitude_is_the_median_with_spread_and_count(network) -> None:
    events = associate(_truth_picks(network, np.random.default_rng(1)), _stations(network))
    ev = network_magnitude(events[0], {"A": 2.0, "B": 2.4, "C": 2.2, "D": float("nan")})
    assert ev.magnitude == pytest.approx(2.2) and ev.magnitude_count == 3
    assert ev.magnitude_spread == pytest.approx(np.std([2.0, 2.4, 2.2]))


@pytest.mark.parametrize("params, message", [
    ({"vp_km_s": 30.0}, r"vp_km_s must be in \[1, 12\]"),
    ({"vs_km_s": 7.0, "vp_km_s": 6.0}, "must be below vp_km_s"),
    ({"velocity_model": "3d"}, "velocity_model must be one of"),
    ({"tolerance_s": -1}, "tolerance_s must be in"),
    ({"speed": 1}, "unknown association parameter 'speed'"),
])
def test_velocity_model_out_of_range_is_refused(params, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        association_parameters(params)


def test_a_catalog_without_pyocto_is_refused_at_creation_with_the_install_that_keeps_numpy(monkeypatch) -> None:
    """Once accepted, every station-day picked, then FAILED at association; and `pip install pyocto`, the old
    hint, downgrades numpy under everything else on Python 3.11."""
    import sys

    from quakestack.catalog.jobs import build_spec
    from quakestack.errors import FailedPrecondition

    monkeypatch.setitem(sys.modules, "pyocto", None)  # as on a machine where it is not installed
    with pytest.raises(FailedPrecondition) as info:
        build_spec(None, None, None, archive={}, inventory={}, selection={}, start=0.0, end=0.0, picker=("p", ""))
    assert "PyOcto, which is not installed" in str(info.value) and "--no-deps pyocto==0.2.2" in str(info.value)
    with pytest.raises(FailedPrecondition):
        station = StationCoordinates("XN.N000.00", 0.0, 0.0, 0.0)
        associate([PhasePick(station.id, "P", 1.0, 0.9)], {station.id: station})


def test_s_picks_labelled_p_build_no_ghost_events_by_default(network) -> None:
    """A picker that labels S as P (as well as S): the old default (no S pick needed) located a second event of
    P picks alone a few seconds after each real one; an event now needs 2 S picks (0 for a P-only picker)."""
    picks = _truth_picks(network, np.random.default_rng(0))
    mislabelled = [PhasePick(p.station, "P", p.time, p.probability) for p in picks if p.phase == "S"]
    events = associate(picks + mislabelled, _stations(network))
    assert len(events) == len(network.events)
    assert association_parameters()["min_s_picks"] == 2
    p_only = associate(picks + mislabelled, _stations(network), {"min_s_picks": 0})
    assert len(p_only) > len(network.events)  # the ghosts the old default built
    assert any(not [p for p, _ in e.picks if p.phase == "S"] for e in p_only)
