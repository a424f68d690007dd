"""What a local SDS tree holds, before it is uploaded: its files (with sha256) and what is in them.

`quakestack archive upload` reports this (stations, channels, days, gaps) so that a seismologist sees
what went into object storage, and skips, with the reason, what the archive reader would never find:
files whose path is not SDS's `YEAR/NET/STA/CHAN.TYPE/NET.STA.LOC.CHAN.TYPE.YEAR.DOY`, and files that
ObsPy cannot read.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from quakestack.digests import file_sha256

SDS_FILE = re.compile(r"(?P<net>[A-Za-z0-9]*)\.(?P<sta>[A-Za-z0-9]+)\.(?P<loc>[A-Za-z0-9-]*)\.(?P<cha>[A-Za-z0-9]+)"
                      r"\.(?P<type>[A-Z])\.(?P<year>\d{4})\.(?P<doy>\d{3})")


@dataclass(frozen=True)
class ArchiveFile:
    path: Path
    relative: str  # its path under the tree's root, "/"-separated: the rest of its object key
    size: int
    sha256: str


@dataclass
class ArchiveSurvey:
    files: list[ArchiveFile] = field(default_factory=list)
    stations: set[str] = field(default_factory=set)  # NET.STA.LOC
    channels: set[str] = field(default_factory=set)  # SEED ids
    days: set[str] = field(default_factory=set)  # YEAR.DOY
    gaps: int = 0
    gap_seconds: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)  # relative path -> why

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict:
        return {"files": len(self.files), "bytes": self.size, "stations": sorted(self.stations),
                "channels": len(self.channels), "days": sorted(self.days), "gaps": self.gaps,
                "gap_seconds": round(self.gap_seconds, 3), "skipped": dict(sorted(self.skipped.items()))}


def sds_path_problem(relative: str) -> str:
    """Why a path is not where the SDS reader looks; "" when it is."""
    parts = relative.split("/")
    if len(parts) != 5:
        return "not at YEAR/NET/STA/CHAN.TYPE/<file> (SDS)"
    year, net, sta, folder, name = parts
    match = SDS_FILE.fullmatch(name)
    if match is None:
        return "file name is not NET.STA.LOC.CHAN.TYPE.YEAR.DOY (SDS)"
    if (match["year"], match["net"], match["sta"], f"{match['cha']}.{match['type']}") != (year, net, sta, folder):
        return "file name disagrees with its folders (SDS: YEAR/NET/STA/CHAN.TYPE/)"
    return ""


def survey(root: Path) -> ArchiveSurvey:
    """Every SDS file under ``root`` with its sha256, and the stations, channels, days and gaps they hold."""
    import obspy

    out = ArchiveSurvey()
    for directory, folders, names in os.walk(root):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in sorted(n for n in names if not n.startswith(".")):
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            problem = sds_path_problem(relative)
            if problem:
                out.skipped[relative] = problem
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    stream = obspy.read(str(path), headonly=True)
            except Exception as exc:  # noqa: BLE001 - ObsPy raises many types for unreadable files
                out.skipped[relative] = f"ObsPy cannot read it ({type(exc).__name__})"
                continue
            for tr in stream:
                out.channels.add(tr.id)
                out.stations.add(tr.id.rsplit(".", 1)[0])
            for gap in stream.get_gaps():
                if gap[6] > 0:  # overlaps come as negative durations
                    out.gaps += 1
                    out.gap_seconds += float(gap[6])
            out.days.add(".".join(relative.rsplit(".", 2)[-2:]))
            out.files.append(ArchiveFile(path, relative, path.stat().st_size, file_sha256(path)))
    return out
