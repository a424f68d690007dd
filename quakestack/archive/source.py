"""Where continuous waveforms come from: an SDS tree (local or under an object-storage prefix) or a list of
miniSEED objects, indexed as channel files with their time spans and read through ObsPy.

Local paths must lie under ``QUAKESTACK_DATA_ALLOWED_DIRS`` (PERMISSION_DENIED otherwise); a local SDS
tree is read with ObsPy's SDS client, object-storage files are fetched and read with ``obspy.read``.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from obspy import Stream, UTCDateTime

from quakestack.errors import InvalidArgument, NotFound
from quakestack.paths import allowed_local_path
from quakestack.storage import ObjectStore, validate_key

DAY_S = 86400.0
# YEAR/NET/STA/CHAN.TYPE/NET.STA.LOC.CHAN.TYPE.YEAR.DOY
SDS_FILE = re.compile(r"(?:^|/)(\d{4})/([^/]+)/([^/]+)/([^/.]+)\.D/\2\.\3\.([^./]*)\.\4\.D\.\1\.(\d{3})$")


@dataclass(frozen=True)
class ArchiveFile:
    """One channel's data file and the time span it covers (a whole day for SDS)."""

    network: str
    station: str
    location: str
    channel: str
    start: float  # POSIX seconds
    end: float
    locator: str  # local path or object key

    @property
    def nslc(self) -> tuple[str, str, str, str]:
        return self.network, self.station, self.location, self.channel


def _sds_file(locator: str) -> ArchiveFile | None:
    m = SDS_FILE.search(locator.replace(os.sep, "/"))
    if not m:
        return None
    year, net, sta, cha, loc, doy = m.groups()
    day = UTCDateTime(year=int(year), julday=int(doy)).timestamp
    return ArchiveFile(net, sta, loc, cha, day, day + DAY_S, locator)


class Archive:
    """An index of channel files plus the way to read a time range of one station's channels."""

    def __init__(self, files: list[ArchiveFile], *, kind: str, root: str = "", store: ObjectStore | None = None):
        self.files = sorted(files, key=lambda f: (f.nslc, f.start))
        self.kind, self.root, self.store = kind, root, store
        if not self.files:
            raise InvalidArgument(f"the archive ({kind} {root}) holds no waveform files")

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def local_sds(cls, root: str, allowed_dirs: Sequence[str | Path]) -> Archive:
        base = allowed_local_path(root, allowed_dirs, "archive path", kind="dir")
        files = []
        for directory, _dirs, names in os.walk(base):
            for name in names:
                entry = _sds_file(os.path.relpath(os.path.join(directory, name), base))
                if entry is not None:
                    files.append(ArchiveFile(*entry.nslc, entry.start, entry.end, os.path.join(directory, name)))
        return cls(files, kind="sds", root=str(base))

    @classmethod
    def object_sds(cls, store: ObjectStore, prefix: str) -> Archive:
        prefix = validate_key(prefix.rstrip("/")) + "/"
        files = []
        for info in store.list(prefix):
            entry = _sds_file(info.key[len(prefix):])
            if entry is not None:
                files.append(ArchiveFile(*entry.nslc, entry.start, entry.end, info.key))
        return cls(files, kind="object-sds", root=prefix, store=store)

    @classmethod
    def objects(cls, store: ObjectStore, keys: Sequence[str]) -> Archive:
        """An explicit list of miniSEED objects; their headers give the streams and spans."""
        import obspy

        files = []
        for key in keys:
            try:
                stream = obspy.read(io.BytesIO(store.get_bytes(validate_key(key))), headonly=True)
            except NotFound:
                raise NotFound(f"no object {key!r}") from None
            except Exception as exc:  # noqa: BLE001 - ObsPy raises many kinds for unreadable files
                raise InvalidArgument(f"{key}: not a waveform file ObsPy can read ({exc})") from None
            for tr in stream:
                s = tr.stats
                files.append(ArchiveFile(s.network, s.station, s.location, s.channel, s.starttime.timestamp,
                                         s.endtime.timestamp + s.delta, key))
        return cls(files, kind="objects", root=f"{len(keys)} objects", store=store)

    # -- queries -------------------------------------------------------------------------------
    def streams(self) -> list[tuple[str, str, str, str]]:
        return sorted({f.nslc for f in self.files})

    def files_between(self, nslc: tuple[str, str, str, str], t0: float, t1: float) -> list[ArchiveFile]:
        return [f for f in self.files if f.nslc == nslc and f.start < t1 and f.end > t0]

    def read(self, network: str, station: str, location: str, channels: Sequence[str], t0: float,
             t1: float, *, response_inventory=None, output: str = "VEL") -> Stream:
        """The channels' samples in [t0, t1), merged per channel (gaps stay gaps: masked traces split).

        With ``response_inventory`` (an ObsPy Inventory holding responses) the instrument response is
        removed (``output``: DISP, VEL or ACC); a channel without a response is a clear error.
        """
        stream = Stream()
        for cha in channels:
            nslc = (network, station, location, cha)
            if self.kind == "sds":
                stream += self._read_local_sds(nslc, t0, t1)
            else:
                for f in self.files_between(nslc, t0, t1):
                    stream += self._read_object(f, t0, t1)
        if len(stream):
            stream.merge(method=1)
            stream = stream.split()
            for tr in stream:  # half-open: a sample exactly at t1 belongs to the next range
                tr.trim(UTCDateTime(t0), UTCDateTime(t1) - 0.5 * tr.stats.delta, nearest_sample=False)
        stream = Stream([tr for tr in stream if tr.stats.npts > 0])
        if response_inventory is not None and len(stream):
            stream = remove_response(stream, response_inventory, output)
        return stream

    def _read_local_sds(self, nslc: tuple[str, str, str, str], t0: float, t1: float) -> Stream:
        from obspy.clients.filesystem.sds import Client

        if not self.files_between(nslc, t0, t1):
            return Stream()
        return Client(self.root).get_waveforms(*nslc, UTCDateTime(t0), UTCDateTime(t1))

    def _read_object(self, f: ArchiveFile, t0: float, t1: float) -> Stream:
        import obspy

        assert self.store is not None
        data = self.store.get_bytes(f.locator)
        stream = obspy.read(io.BytesIO(data), starttime=UTCDateTime(t0), endtime=UTCDateTime(t1))
        return stream.select(network=f.network, station=f.station, location=f.location, channel=f.channel)


def remove_response(stream: Stream, inventory, output: str = "VEL") -> Stream:
    """Counts to ground motion with the inventory's responses (pre-filter-free, water level 60 dB)."""
    if output not in ("DISP", "VEL", "ACC"):
        raise InvalidArgument(f"response output must be DISP, VEL or ACC, got {output!r}")
    out = Stream()
    for tr in stream:
        tr = tr.copy()
        tr.data = tr.data.astype("float64")
        try:
            tr.remove_response(inventory=inventory, output=output)
        except Exception as exc:  # noqa: BLE001 - ObsPy raises plain Exception/ValueError when absent
            raise InvalidArgument(f"{tr.id}: no instrument response in the inventory ({exc})") from None
        tr.data = tr.data.astype("float32")
        out += tr
    return out
