"""How well an origin is constrained, in QuakeML's terms (OriginQuality), and whether it sits on the edge
of the volume the associator searched.

An origin on the edge of the search volume is where a grid search puts an event it could not place
(two events of one network once got the identical hypocentre, outside the network); the figures let
anyone reading the catalog see that: the azimuthal gap (stations on one side only), the RMS of the
travel-time residuals, the distances to the nearest and farthest station, and a flag naming the edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from obspy.geodetics import gps2dist_azimuth, kilometer2degrees

from quakestack.archive.inventory import StationCoordinates
from quakestack.catalog.types import CatalogEvent

KM_PER_DEGREE = 111.19
EDGE_KM = 1.0  # an origin within this distance of a side or the bottom of the search volume is on its edge


@dataclass(frozen=True)
class SearchVolume:
    """The area and depths the associator searched (PyOcto's grid)."""

    lat: tuple[float, float]
    lon: tuple[float, float]
    max_depth_km: float

    @classmethod
    def around(cls, stations: Mapping[str, StationCoordinates], margin_km: float, max_depth_km: float) -> SearchVolume:
        """The stations' bounding box widened by ``margin_km`` on every side."""
        lats = [s.latitude for s in stations.values()]
        lons = [s.longitude for s in stations.values()]
        dlat = margin_km / KM_PER_DEGREE
        dlon = dlat / max(np.cos(np.radians(np.mean(lats))), 0.1)
        return cls((min(lats) - dlat, max(lats) + dlat), (min(lons) - dlon, max(lons) + dlon), max_depth_km)

    def edge(self, latitude: float, longitude: float, depth_km: float) -> str:
        """Which edge an origin lies on ("" when inside): "north", "south", "east", "west", "bottom"."""
        km_lon = KM_PER_DEGREE * max(np.cos(np.radians(latitude)), 0.1)
        sides = [("south", (latitude - self.lat[0]) * KM_PER_DEGREE),
                 ("north", (self.lat[1] - latitude) * KM_PER_DEGREE),
                 ("west", (longitude - self.lon[0]) * km_lon),
                 ("east", (self.lon[1] - longitude) * km_lon),
                 ("bottom", self.max_depth_km - depth_km)]
        return ", ".join(name for name, km in sides if km < EDGE_KM)


def add_origin_quality(event: CatalogEvent, stations: Mapping[str, StationCoordinates],
                       volume: SearchVolume) -> CatalogEvent:
    """Fill the event's quality figures from its associated picks and the stations' coordinates."""
    geometry: dict[str, tuple[float, float]] = {}
    for pick, _residual in event.picks:
        if pick.station not in geometry:
            s = stations[pick.station]
            metres, azimuth, _back = gps2dist_azimuth(event.latitude, event.longitude, s.latitude, s.longitude)
            geometry[pick.station] = (kilometer2degrees(metres / 1000.0), azimuth)
    residuals = np.array([residual for _pick, residual in event.picks], dtype=float)
    event.arrival_geometry = geometry
    event.station_count = len(geometry)
    event.rms_residual_s = float(np.sqrt(np.mean(residuals ** 2))) if residuals.size else None
    event.azimuthal_gap_deg = azimuthal_gap([az for _d, az in geometry.values()])
    distances = [d for d, _az in geometry.values()]
    event.min_distance_deg = min(distances) if distances else None
    event.max_distance_deg = max(distances) if distances else None
    event.search_edge = volume.edge(event.latitude, event.longitude, event.depth_km)
    return event


def azimuthal_gap(azimuths: list[float]) -> float | None:
    """The largest angle between neighbouring station azimuths seen from the epicentre (360 for one)."""
    if not azimuths:
        return None
    ordered = np.sort(np.mod(azimuths, 360.0))
    gaps = np.diff(np.append(ordered, ordered[0] + 360.0))
    return float(gaps.max())
