"""FDSN-style stream selection: network, station, location and channel patterns with * and ? wildcards.

Each pattern may be a comma-separated list (``HH?,EH?``); ``--`` stands for the empty location code,
as in FDSN web services. A pattern that matches no stream of the archive is an error before any work.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from quakestack.errors import InvalidArgument

_PATTERN = re.compile(r"^[A-Za-z0-9*?_\-]*$")


def _alternatives(pattern: str, what: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in (pattern or "*").split(","))
    for p in parts:
        if not _PATTERN.match(p):
            raise InvalidArgument(f"{what} pattern {p!r}: only letters, digits, '*', '?', '-' and ',' are allowed")
    return tuple("" if p == "--" else p.upper() for p in parts)


def _matches(value: str, alternatives: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(value.upper(), p) if p else value == "" for p in alternatives)


@dataclass(frozen=True)
class Selection:
    """Which streams of an archive to use; every field is an FDSN pattern list."""

    network: str = "*"
    station: str = "*"
    location: str = "*"
    channel: str = "*"

    def __post_init__(self) -> None:
        for name in ("network", "station", "location", "channel"):
            _alternatives(getattr(self, name), name)

    def matches(self, net: str, sta: str, loc: str, cha: str) -> bool:
        return all(_matches(value, _alternatives(getattr(self, name), name)) for name, value in
                   (("network", net), ("station", sta), ("location", loc), ("channel", cha)))

    def check_each_pattern_matches(self, streams: list[tuple[str, str, str, str]]) -> None:
        """Every alternative of every field must match some stream (a typo is caught before any work)."""
        for index, name in enumerate(("network", "station", "location", "channel")):
            for alt in _alternatives(getattr(self, name), name):
                if not any(_matches(s[index], (alt,)) for s in streams):
                    shown = "--" if alt == "" else alt
                    known = sorted({s[index] or "--" for s in streams})
                    raise InvalidArgument(f"{name} pattern {shown!r} matches nothing in the archive "
                                          f"(it has {', '.join(known[:20]) or 'no streams'})")
        if not any(self.matches(*s) for s in streams):
            raise InvalidArgument(f"the selection {self} matches no stream of the archive")

    def __str__(self) -> str:
        return f"{self.network}.{self.station}.{self.location or '--'}.{self.channel}"
