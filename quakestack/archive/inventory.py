"""Station coordinates (and, on request, responses) from a StationXML inventory read by ObsPy."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from obspy import Inventory, UTCDateTime

from quakestack.errors import InvalidArgument
from quakestack.storage import ObjectStore, validate_key


@dataclass(frozen=True)
class StationCoordinates:
    id: str  # NET.STA.LOC
    latitude: float
    longitude: float
    elevation_m: float


def read_inventory(*, path: str | Path | None = None, store: ObjectStore | None = None, key: str = "") -> Inventory:
    """A StationXML inventory from a local path (already allow-listed) or an object key."""
    import obspy

    try:
        if path is not None:
            return obspy.read_inventory(str(path))
        if store is None or not key:
            raise InvalidArgument("an inventory needs a path or an object key")
        return obspy.read_inventory(io.BytesIO(store.get_bytes(validate_key(key))))
    except InvalidArgument:
        raise
    except Exception as exc:  # noqa: BLE001 - ObsPy raises many kinds for unreadable files
        if type(exc).__name__ == "NotFound":
            raise
        raise InvalidArgument(f"inventory {path or key}: not StationXML ObsPy can read ({exc})") from None


def coordinates(inventory: Inventory, stations: list[tuple[str, str, str, str]],
                when: float) -> dict[str, StationCoordinates]:
    """Coordinates per NET.STA.LOC (from any of its channels); stations the inventory lacks are an error."""
    out: dict[str, StationCoordinates] = {}
    missing = []
    for net, sta, loc, cha in stations:
        sid = f"{net}.{sta}.{loc}"
        if sid in out:
            continue
        try:
            c = inventory.get_coordinates(f"{sid}.{cha}", UTCDateTime(when))
        except Exception:  # noqa: BLE001 - ObsPy raises a bare Exception when a channel is not found
            picked = inventory.select(network=net, station=sta)
            if not len(picked) or not len(picked[0]):
                missing.append(sid)
                continue
            s = picked[0][0]
            c = {"latitude": s.latitude, "longitude": s.longitude, "elevation": s.elevation}
        if c.get("latitude") is None or c.get("longitude") is None:
            missing.append(sid)
            continue
        out[sid] = StationCoordinates(sid, float(c["latitude"]), float(c["longitude"]), float(c.get("elevation") or 0))
    if missing:
        raise InvalidArgument(f"no coordinates in the inventory for station(s) {', '.join(sorted(set(missing)))}")
    return out
