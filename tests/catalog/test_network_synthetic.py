"""The synthetic network: SDS layout, StationXML, truth catalog, data continuous across midnight."""

from __future__ import annotations

import os

import numpy as np
import obspy
from obspy import UTCDateTime

from quakestack.data.network import p_travel_s, ring_stations, sds_path, write_network
from quakestack.data.synthetic import VP_KM_S, VS_KM_S


def test_network_archive_inventory_and_truth(tmp_path) -> None:
    start, end = UTCDateTime(2024, 3, 1, 23, 50), UTCDateTime(2024, 3, 2, 0, 10)
    midnight = UTCDateTime(2024, 3, 1, 23, 59, 58)
    net = write_network(str(tmp_path), seed=3, start=start, end=end, n_events=3, fixed_times=[midnight],
                        missing_days=[("XN.N003.00", "2024.062")])
    assert len(net.stations) >= 6 and len(net.events) == 4
    assert any(abs(ev["origin_time"] - midnight) < 0.01 for ev in net.events)
    assert net.missing == [("XN.N003.00", "2024.062")]
    s0 = net.stations[0]
    for day in (UTCDateTime(2024, 3, 1), UTCDateTime(2024, 3, 2)):
        path = sds_path(net.sds_root, s0.network, s0.station, s0.location, "HHZ", day)
        assert os.path.isfile(path), path
        assert path.endswith(f"XN.N000.00.HHZ.D.2024.{day.julday:03d}")
    assert not os.path.exists(sds_path(net.sds_root, "XN", "N003", "00", "HHZ", UTCDateTime(2024, 3, 2)))
    # continuous across midnight: the two day files meet sample to sample
    st = obspy.read(os.path.join(net.sds_root, "2024", "XN", "N000", "HHZ.D", "*"))
    st.merge()
    assert len(st) == 1 and st[0].stats.npts == int((end - start) * 100)
    # stations and coordinates from StationXML; truth readable by ObsPy with P and S per station
    inv = obspy.read_inventory(net.inventory_path)
    coords = inv.get_coordinates("XN.N001.00.HHZ", start)
    assert abs(coords["latitude"] - net.stations[1].latitude) < 1e-6
    cat = obspy.read_events(net.catalog_path)
    assert len(cat) == 4 and all(len(e.picks) == 2 * len(net.stations) for e in cat)
    ev = net.events[0]
    p = next(pk for pk in ev["picks"] if pk["seed_id"] == f"{s0.id}.HHZ")
    s = next(pk for pk in ev["picks"] if pk["seed_id"] == f"{s0.id}.HHN")
    assert abs((p["time"] - ev["origin_time"]) - p_travel_s(s0, ev)) < 1e-6
    assert abs((s["time"] - ev["origin_time"]) - p_travel_s(s0, ev) * VP_KM_S / VS_KM_S) < 1e-6
    # the signal starts at P: quiet before, loud after
    tr = st[0]
    k = int(round((p["time"] - tr.stats.starttime) * 100))
    assert np.abs(tr.data[k:k + 300]).max() > 3 * np.abs(tr.data[k - 300:k - 5]).max()


def test_ring_stations_are_distinct() -> None:
    stations = ring_stations(8)
    assert len({(s.latitude, s.longitude) for s in stations}) == 8
