"""Station-day tasks: the unit of annotation work, with margins on both sides of midnight.

A task owns the picks whose times fall in its core ``[start, end)`` (a UTC day clipped to the request);
it reads ``margin_s`` more on each side so that windows near midnight see whole waveforms. Since the
cores of consecutive days touch without overlapping, every pick belongs to exactly one task: nothing
is lost or doubled at midnight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from obspy import UTCDateTime

from quakestack.archive.inventory import StationCoordinates, coordinates
from quakestack.archive.selection import Selection
from quakestack.archive.source import DAY_S, Archive
from quakestack.errors import InvalidArgument

MAX_MARGIN_S = 3600.0


@dataclass(frozen=True)
class StationDayTask:
    stream: str  # NET.STA.LOC.BAND (e.g. XN.N000.00.HH): one instrument of one station
    channels: tuple[str, ...]
    day: str  # YYYY.DOY
    start: float  # core, POSIX seconds
    end: float
    margin_s: float

    @property
    def station(self) -> str:
        return self.stream.rsplit(".", 1)[0]

    @property
    def task_id(self) -> str:
        return f"{self.stream}.{self.day}"

    @property
    def read_start(self) -> float:
        return self.start - self.margin_s

    @property
    def read_end(self) -> float:
        return self.end + self.margin_s

    def owns(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass
class Plan:
    tasks: list[StationDayTask]
    missing: list[str]  # NET.STA.LOC.BAND.YYYY.DOY: station-days of selected streams without data
    stations: dict[str, StationCoordinates] = field(default_factory=dict)


def _day_key(t: float) -> str:
    u = UTCDateTime(t)
    return f"{u.year:04d}.{u.julday:03d}"


def plan_station_days(archive: Archive, selection: Selection, start: float, end: float, *, margin_s: float = 60.0,
                      inventory=None) -> Plan:
    """Every station-day of the selection between ``start`` and ``end``; errors before any work."""
    start, end = float(UTCDateTime(start).timestamp), float(UTCDateTime(end).timestamp)
    if end <= start:
        raise InvalidArgument(f"the time range is empty or inverted: start {UTCDateTime(start)} is not before "
                              f"end {UTCDateTime(end)}")
    if not 0 <= margin_s <= MAX_MARGIN_S:
        raise InvalidArgument(f"margin_s must be in [0, {MAX_MARGIN_S:g}], got {margin_s:g}")
    streams = archive.streams()
    selection.check_each_pattern_matches(streams)
    chosen = [s for s in streams if selection.matches(*s)]
    in_range = [s for s in chosen if archive.files_between(s, start, end)]
    if not in_range:
        raise InvalidArgument(f"the selection {selection} has no data between {UTCDateTime(start)} and "
                              f"{UTCDateTime(end)}")
    stations = coordinates(inventory, in_range, start) if inventory is not None else {}
    groups: dict[str, list[tuple[str, str, str, str]]] = {}
    for s in in_range:
        groups.setdefault(f"{s[0]}.{s[1]}.{s[2]}.{s[3][:2]}", []).append(s)
    first_day = UTCDateTime(UTCDateTime(start).date).timestamp
    tasks, missing = [], []
    for stream, members in sorted(groups.items()):
        day = first_day
        while day < end:
            core = (max(day, start), min(day + DAY_S, end))
            have = [s[3] for s in members if archive.files_between(s, *core)]
            if have:
                tasks.append(StationDayTask(stream, tuple(sorted(have)), _day_key(day), core[0], core[1], margin_s))
            else:
                missing.append(f"{stream}.{_day_key(day)}")
            day += DAY_S
    return Plan(tasks, missing, stations)
