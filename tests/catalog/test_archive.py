"""Archive sources (local SDS, SDS under an object prefix, a list of miniSEED objects) and station-day plans."""

from __future__ import annotations

import os

import pytest
from obspy import UTCDateTime

from quakestack.archive.inventory import read_inventory
from quakestack.archive.plan import plan_station_days
from quakestack.archive.selection import Selection
from quakestack.archive.source import Archive
from quakestack.data.network import write_inventory
from quakestack.errors import InvalidArgument, PermissionDenied

DAY1, DAY2 = UTCDateTime(2024, 3, 1), UTCDateTime(2024, 3, 2)


def _upload_tree(store, root: str, prefix: str) -> list[str]:
    keys = []
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            key = f"{prefix}/{os.path.relpath(path, root)}"
            store.put_file(key, path)
            keys.append(key)
    return sorted(keys)


def test_local_sds_plan_margins_and_missing_day(network) -> None:
    archive = Archive.local_sds(network.sds_root, [os.path.dirname(network.sds_root)])
    inventory = read_inventory(path=network.inventory_path)
    plan = plan_station_days(archive, Selection(network="XN", channel="HH?"), network.start, network.end,
                             margin_s=60, inventory=inventory)
    assert len(plan.stations) == 8
    assert plan.missing == ["XN.N005.00.HH.2024.062"]
    assert len(plan.tasks) == 2 * 8 - 1
    by_station: dict[str, list] = {}
    for task in plan.tasks:
        by_station.setdefault(task.stream, []).append(task)
        assert task.channels == ("HHE", "HHN", "HHZ")
    first, second = by_station["XN.N000.00.HH"]
    assert first.start == network.start.timestamp and first.end == DAY2.timestamp == second.start
    assert second.end == network.end.timestamp
    assert first.owns(DAY2.timestamp - 0.01) and not first.owns(DAY2.timestamp) and second.owns(DAY2.timestamp)
    # the task reads its margins across midnight from both day files
    st = archive.read("XN", "N000", "00", first.channels, first.read_start, first.read_end)
    assert len(st) == 3
    for tr in st:
        assert abs(tr.stats.starttime - network.start) < 0.011  # data begin at 23:30 (no margin before it)
        assert abs(tr.stats.endtime - (DAY2 + 60)) < 0.011


def test_object_sds_and_object_list_read_the_same_samples(network, weed_store) -> None:
    keys = _upload_tree(weed_store, network.sds_root, "archives/net1")
    local = Archive.local_sds(network.sds_root, [network.sds_root])
    remote = Archive.object_sds(weed_store, "archives/net1")
    listed = Archive.objects(weed_store, [k for k in keys if "/N001/" in k])
    assert remote.streams() == local.streams() and len(listed.streams()) == 3
    t0, t1 = (DAY2 - 30).timestamp, (DAY2 + 30).timestamp
    a = local.read("XN", "N001", "00", ["HHZ"], t0, t1)
    b = remote.read("XN", "N001", "00", ["HHZ"], t0, t1)
    c = listed.read("XN", "N001", "00", ["HHZ"], t0, t1)
    assert len(a) == len(b) == len(c) == 1
    assert a[0].stats.npts == 6000
    assert (a[0].data == b[0].data).all() and (a[0].data == c[0].data).all()


def test_bad_input_is_refused_before_any_work(network, tmp_path) -> None:
    archive = Archive.local_sds(network.sds_root, [network.sds_root])
    inventory = read_inventory(path=network.inventory_path)
    with pytest.raises(InvalidArgument, match="station pattern 'NOPE' matches nothing"):
        plan_station_days(archive, Selection(station="N00*,NOPE"), network.start, network.end)
    with pytest.raises(InvalidArgument, match="channel pattern 'BH\\?' matches nothing"):
        plan_station_days(archive, Selection(channel="BH?"), network.start, network.end)
    with pytest.raises(InvalidArgument, match="inverted"):
        plan_station_days(archive, Selection(), network.end, network.start)
    with pytest.raises(InvalidArgument, match="no data between"):
        plan_station_days(archive, Selection(), UTCDateTime(2020, 1, 1), UTCDateTime(2020, 1, 2))
    with pytest.raises(InvalidArgument, match="only letters"):
        Selection(station="N0/0")
    partial = write_inventory(network.stations, str(tmp_path / "partial.xml"), DAY1 - 86400,
                              without_coordinates=["XN.N002.00", "XN.N004.00"])
    with pytest.raises(InvalidArgument, match="no coordinates .* XN.N002.00, XN.N004.00"):
        plan_station_days(archive, Selection(), network.start, network.end,
                          inventory=read_inventory(path=partial))
    assert plan_station_days(archive, Selection(station="N001"), network.start, network.end,
                             inventory=inventory).tasks
    with pytest.raises(PermissionDenied):
        Archive.local_sds(network.sds_root, [str(tmp_path)])


def test_response_removal_on_request(network) -> None:
    from obspy.core.inventory.response import Response

    from quakestack.errors import InvalidArgument as Invalid

    archive = Archive.local_sds(network.sds_root, [network.sds_root])
    t0, t1 = (DAY2 - 10).timestamp, (DAY2 + 10).timestamp
    inventory = read_inventory(path=network.inventory_path)
    with pytest.raises(Invalid, match="no instrument response"):
        archive.read("XN", "N001", "00", ["HHZ"], t0, t1, response_inventory=inventory)
    for cha in inventory.select(station="N001")[0][0]:  # a flat 1e9 counts per m/s response
        cha.response = Response.from_paz(zeros=[], poles=[], stage_gain=1e9, input_units="M/S",
                                         output_units="COUNTS")
    raw = archive.read("XN", "N001", "00", ["HHZ"], t0, t1)
    vel = archive.read("XN", "N001", "00", ["HHZ"], t0, t1, response_inventory=inventory)
    assert len(vel) == 1 and vel[0].stats.npts == raw[0].stats.npts
    ratio = float(abs(raw[0].data).max() / abs(vel[0].data).max())
    assert 1e8 < ratio < 1e10
