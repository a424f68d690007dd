"""A synthetic seismic network with a known truth: SDS archive, StationXML and a truth QuakeML catalog.

Stations sit on rings around the source region; events happen at known times, places and magnitudes
(including, on request, some at a given time such as 23:59:58 so that midnight is exercised). P and
S arrive after hypocentral distance over the homogeneous (0D) velocities of ``synthetic`` (vp 6.0,
vs 3.5 km/s), so an associator with the same 0D model can locate them exactly. Waveforms come from
the same physics as the STEAD-style generator (Hutton & Boore amplitudes, coda, coloured noise).

Each event's signal is made once per station and then cut into the day files it overlaps, so the
data are continuous across midnight. Files follow the SeisComP Data Structure:
``<root>/YEAR/NET/STA/CHAN.D/NET.STA.LOC.CHAN.D.YEAR.DOY``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from obspy import Stream, Trace, UTCDateTime
from obspy.core.inventory import Channel, Inventory, Network, Site, Station

from quakestack.data.synthetic import (
    VP_KM_S,
    VS_KM_S,
    SignalParams,
    _distance_km,
    coloured_noise,
    event_signal,
    station_noise_level,
    write_catalog,
)

DAY_S = 86400.0
CENTER = (35.0, -117.0)


@dataclass(frozen=True)
class NetworkStation:
    network: str
    station: str
    location: str
    latitude: float
    longitude: float
    elevation_m: float = 0.0

    @property
    def id(self) -> str:
        return f"{self.network}.{self.station}.{self.location}"


@dataclass
class SyntheticNetwork:
    """What was written and the truth it holds."""

    sds_root: str
    inventory_path: str
    catalog_path: str
    stations: list[NetworkStation]
    events: list[dict]  # synthetic.write_continuous's truth dicts (origin_time, latitude, ..., picks)
    start: UTCDateTime
    end: UTCDateTime
    missing: list[tuple[str, str]] = field(default_factory=list)  # (station id, YYYY.DOY) not written


def ring_stations(n: int = 8, center: tuple[float, float] = CENTER, radius_km: float = 35.0,
                  network: str = "XN") -> list[NetworkStation]:
    """``n`` stations: a centre station and the rest on a ring (alternating radii), good azimuthal cover."""
    lat0, lon0 = center
    out = [NetworkStation(network, "N000", "00", lat0, lon0, 300.0)]
    for i in range(1, n):
        az = 2 * math.pi * (i - 1) / (n - 1)
        r = radius_km * (1.0 if i % 2 else 0.6)
        lat = lat0 + r * math.cos(az) / 111.19
        lon = lon0 + r * math.sin(az) / (111.19 * math.cos(math.radians(lat0)))
        out.append(NetworkStation(network, f"N{i:03d}", "00", round(lat, 4), round(lon, 4), 300.0 + 50.0 * i))
    return out


def _events(rng: np.random.Generator, start: UTCDateTime, end: UTCDateTime, n_events: int,
            fixed_times: Sequence[UTCDateTime], center: tuple[float, float], rate: float,
            min_gap_s: float, magnitude_range: tuple[float, float]) -> list[dict]:
    times = [UTCDateTime(t) for t in fixed_times]
    span = end - start
    tries = 0
    while len(times) < n_events + len(fixed_times) and tries < 100_000:
        tries += 1
        t = start + 30.0 + float(rng.uniform(0, max(span - 120.0, 1.0)))
        if all(abs(t - u) >= min_gap_s for u in times):
            times.append(t)
    times.sort()
    events = []
    for i, t in enumerate(times):
        t = start + round((t - start) * rate) / rate  # on the sample grid
        lat = center[0] + float(rng.uniform(-0.2, 0.2))
        lon = center[1] + float(rng.uniform(-0.25, 0.25))
        events.append({
            "event_id": f"smi:quakestack/synthetic/network/{i}",
            "origin_time": t,
            "latitude": round(lat, 4),
            "longitude": round(lon, 4),
            "depth_km": round(float(rng.uniform(3.0, 15.0)), 2),
            "magnitude": round(float(rng.uniform(*magnitude_range)), 1),
            "magnitude_type": "ml",
            "picks": [],
        })
    return events


def write_inventory(stations: Sequence[NetworkStation], path: str, start: UTCDateTime, rate: float = 100.0,
                    without_coordinates: Sequence[str] = ()) -> str:
    """StationXML (ObsPy) with HH[ZNE] channels; stations named in ``without_coordinates`` get 0/0/0.

    StationXML requires coordinates, so "without" means the station is left out of the inventory.
    """
    networks: dict[str, Network] = {}
    for s in stations:
        if s.id in without_coordinates:
            continue
        net = networks.setdefault(s.network, Network(code=s.network, stations=[], start_date=start))
        channels = [Channel(code=f"HH{c}", location_code=s.location, latitude=s.latitude, longitude=s.longitude,
                            elevation=s.elevation_m, depth=0.0, sample_rate=rate, start_date=start,
                            azimuth={"Z": 0.0, "N": 0.0, "E": 90.0}[c], dip={"Z": -90.0, "N": 0.0, "E": 0.0}[c])
                    for c in "ZNE"]
        net.stations.append(Station(code=s.station, latitude=s.latitude, longitude=s.longitude,
                                    elevation=s.elevation_m, channels=channels, site=Site(name=s.station),
                                    start_date=start, creation_date=start))
    Inventory(networks=list(networks.values()), source="quakestack synthetic").write(path, format="STATIONXML")
    return path


def sds_path(root: str, net: str, sta: str, loc: str, cha: str, day: UTCDateTime) -> str:
    """The SDS file of one channel-day."""
    return os.path.join(root, f"{day.year:04d}", net, sta, f"{cha}.D",
                        f"{net}.{sta}.{loc}.{cha}.D.{day.year:04d}.{day.julday:03d}")


def _days(start: UTCDateTime, end: UTCDateTime) -> list[UTCDateTime]:
    day = UTCDateTime(start.year, start.month, start.day)
    out = []
    while day < end:
        out.append(day)
        day += DAY_S
    return out


def write_network(out_dir: str, seed: int, start: UTCDateTime, end: UTCDateTime, *, n_events: int = 8,
                  fixed_times: Sequence[UTCDateTime] = (), stations: Sequence[NetworkStation] | None = None,
                  sampling_rate: float = 100.0, missing_days: Sequence[tuple[str, str]] = (),
                  min_gap_s: float = 150.0, magnitude_range: tuple[float, float] = (1.5, 3.5),
                  noise_scale: float = 1.0) -> SyntheticNetwork:
    """Write continuous 3-component data of a network between ``start`` and ``end``, with its truth.

    ``missing_days`` lists (station id NET.STA.LOC, "YYYY.DOY") whose files are not written (a gap
    the archive reader must report). Returns the paths and the truth (events with their P and S picks).
    """
    if end <= start:
        raise ValueError("end must be after start")
    rng = np.random.default_rng(seed)
    stations = list(stations or ring_stations())
    center = (float(np.mean([s.latitude for s in stations])), float(np.mean([s.longitude for s in stations])))
    events = _events(rng, start, end, n_events, fixed_times, center, sampling_rate, min_gap_s, magnitude_range)
    root = os.path.join(out_dir, "sds")
    missing = {(sid, day) for sid, day in missing_days}
    written_missing: list[tuple[str, str]] = []
    n_total = int(round((end - start) * sampling_rate))
    for s in stations:
        level = station_noise_level(s.id) * noise_scale
        segments = []  # (absolute first sample, (3, n) signal)
        for ev in events:
            dist, baz = _distance_km(s.latitude, s.longitude, ev["latitude"], ev["longitude"])
            r = math.hypot(dist, ev["depth_km"])
            o = (ev["origin_time"] - start) * sampling_rate
            p_abs = o + r / VP_KM_S * sampling_rate
            s_abs = o + r / VS_KM_S * sampling_rate
            first = int(math.ceil(p_abs - 1e-9))
            length = int(s_abs - first) + int(60 * sampling_rate)
            sig = event_signal(rng, SignalParams(p_abs - first, s_abs - first, ev["magnitude"], r, baz, level),
                               length, sampling_rate)
            segments.append((first, sig))
            for phase, t_abs, cha in (("P", p_abs, "HHZ"), ("S", s_abs, "HHN")):
                ev["picks"].append({"seed_id": f"{s.id}.{cha}", "phase": phase,
                                    "time": start + t_abs / sampling_rate, "distance_km": round(dist, 3)})
        for day in _days(start, end):
            a = max(0, int(round((day - start) * sampling_rate)))
            b = min(n_total, int(round((day + DAY_S - start) * sampling_rate)))
            key = (s.id, f"{day.year:04d}.{day.julday:03d}")
            if key in missing:
                written_missing.append(key)
                continue
            data = coloured_noise(rng, (3, b - a), sampling_rate) * level
            for first, sig in segments:
                lo, hi = max(a, first), min(b, first + sig.shape[1])
                if hi > lo:
                    data[:, lo - a:hi - a] += sig[:, lo - first:hi - first]
            t0 = start + a / sampling_rate
            for c, comp in enumerate("ZNE"):
                cha = f"HH{comp}"
                path = sds_path(root, s.network, s.station, s.location, cha, day)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                tr = Trace(data=data[c].astype(np.float32), header={
                    "network": s.network, "station": s.station, "location": s.location, "channel": cha,
                    "sampling_rate": sampling_rate, "starttime": t0})
                Stream([tr]).write(path, format="MSEED", encoding="FLOAT32", reclen=4096)
    for ev in events:
        ev["picks"].sort(key=lambda p: (p["time"], p["seed_id"]))
    inventory = write_inventory(stations, os.path.join(out_dir, "stations.xml"), start - DAY_S, sampling_rate)
    catalog = write_catalog(events, os.path.join(out_dir, "truth.xml"), "quakeml")
    return SyntheticNetwork(root, inventory, catalog, stations, events, start, end, written_missing)


def p_travel_s(station: NetworkStation, event: dict) -> float:
    """The truth's P travel time from ``event`` to ``station`` (0D model)."""
    dist, _ = _distance_km(station.latitude, station.longitude, event["latitude"], event["longitude"])
    return math.hypot(dist, event["depth_km"]) / VP_KM_S


__all__ = ["NetworkStation", "SyntheticNetwork", "magnitude_windows", "p_travel_s", "picker_windows",
           "ring_stations", "sds_path", "write_inventory", "write_network"]


def picker_windows(seed: int, n: int, n_samples: int, *, rate: float = 100.0, noise_fraction: float = 0.2,
                   magnitude_range: tuple[float, float] = (1.5, 3.5), max_distance_km: float = 60.0,
                   noise_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labelled training windows from the network's physics: (x [n, 3, L] ZNE, P sample, S sample; NaN = none).

    P lies anywhere in the first 70 % of the window, so a picker learns to find it wherever it is.
    """
    rng = np.random.default_rng(seed)
    params, p_samples, s_samples = [], [], []
    for i in range(n):
        level = station_noise_level(f"XN.W{i % 50:03d}") * noise_scale
        if rng.uniform() < noise_fraction:
            params.append(SignalParams(None, None, 0.0, 1.0, 0.0, level))
            p_samples.append(np.nan)
            s_samples.append(np.nan)
            continue
        r = math.hypot(float(rng.uniform(2.0, max_distance_km)), float(rng.uniform(3.0, 15.0)))
        p = float(rng.uniform(0.05, 0.7) * n_samples)
        s = p + r * (1 / VS_KM_S - 1 / VP_KM_S) * rate
        params.append(SignalParams(p, s, float(rng.uniform(*magnitude_range)), r, float(rng.uniform(0, 360)), level))
        p_samples.append(p)
        s_samples.append(s if s < n_samples else np.nan)
    x = np.concatenate([_synthesize_chunk(rng, params[a:a + 256], n_samples, rate) for a in range(0, n, 256)])
    return x, np.asarray(p_samples, np.float32), np.asarray(s_samples, np.float32)


def magnitude_windows(seed: int, n: int, n_samples: int, p_offset_samples: int, *, rate: float = 100.0,
                      magnitude_range: tuple[float, float] = (1.5, 3.5), max_distance_km: float = 60.0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Windows with P at a fixed sample and their true magnitude, for training a station-magnitude model."""
    rng = np.random.default_rng(seed)
    params, mags = [], []
    for i in range(n):
        r = math.hypot(float(rng.uniform(2.0, max_distance_km)), float(rng.uniform(3.0, 15.0)))
        p = float(p_offset_samples) + float(rng.uniform(0, 1))
        m = float(rng.uniform(*magnitude_range))
        params.append(SignalParams(p, p + r * (1 / VS_KM_S - 1 / VP_KM_S) * rate, m, r, float(rng.uniform(0, 360)),
                                   station_noise_level(f"XN.W{i % 50:03d}")))
        mags.append(m)
    x = np.concatenate([_synthesize_chunk(rng, params[a:a + 256], n_samples, rate) for a in range(0, n, 256)])
    return x, np.asarray(mags, np.float32)


def _synthesize_chunk(rng: np.random.Generator, params: list[SignalParams], n_samples: int, rate: float) -> np.ndarray:
    from quakestack.data.synthetic import synthesize

    return synthesize(rng, params, n_samples, rate)
