"""Phase association with PyOcto in time chunks, and network magnitudes.

PyOcto (Münchmeyer 2024) groups picks into events and locates them with the velocity model the request
gives: homogeneous (``velocity_model: "0d"``, ``vp_km_s``/``vs_km_s``) or layered (``"1d"`` with
``velocity_layers``, rows ``[depth_km, vp_km_s, vs_km_s]``; its travel-time table is built once per model
and grid into the cache directory, see ``quakestack.catalog.velocity``).

Long pick lists are associated in chunks: chunk ``k`` owns the origin times in ``[t_k, t_k + chunk_s)``
and sees the picks in that span widened by ``overlap_s`` on both sides, so an event near a chunk edge has
all its picks in the chunk that owns it and in no other result: no event is lost or doubled at chunk edges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from obspy import UTCDateTime

from quakestack.archive.inventory import StationCoordinates
from quakestack.catalog.origin_quality import SearchVolume, add_origin_quality
from quakestack.catalog.types import CatalogEvent, PhasePick, StationMagnitude
from quakestack.catalog.velocity import FIELD as LAYERS_FIELD
from quakestack.catalog.velocity import cached_table, validate_layers
from quakestack.errors import FailedPrecondition, InvalidArgument
from quakestack.models.spec import HyperParameter, resolve_params

ASSOCIATION_PARAMETERS: tuple[HyperParameter, ...] = (
    HyperParameter("velocity_model", "choice", "0d", choices=("0d", "1d"),
                   description="0d: homogeneous (vp_km_s, vs_km_s); 1d: layered (velocity_layers)"),
    HyperParameter("vp_km_s", "float", 6.0, 1.0, 12.0, description="P velocity (0d)"),
    HyperParameter("vs_km_s", "float", 3.5, 0.5, 8.0, description="S velocity, below vp (0d)"),
    HyperParameter("velocity_grid_km", "float", 0.5, 0.1, 10.0, description="travel-time table spacing (1d)"),
    HyperParameter("tolerance_s", "float", 1.5, 0.01, 20.0, description="travel-time tolerance"),
    HyperParameter("min_picks", "int", 6, 3, 1000, description="picks an event needs"),
    HyperParameter("min_p_picks", "int", 3, 0, 1000, description="P picks an event needs"),
    # P picks alone (a picker's S partly labelled P) built ghost events ~6 s after real ones; a P-only picker
    # sets 0
    HyperParameter("min_s_picks", "int", 2, 0, 1000, description="S picks an event needs (0 for P-only pickers)"),
    HyperParameter("min_p_and_s_picks", "int", 0, 0, 1000, description="stations with both P and S an event needs"),
    HyperParameter("max_depth_km", "float", 30.0, 1.0, 700.0, description="deepest origin searched"),
    HyperParameter("margin_km", "float", 50.0, 0.0, 1000.0, description="search area beyond the stations"),
    HyperParameter("chunk_s", "float", 3600.0, 60.0, 86400.0 * 7, description="association chunk length"),
    HyperParameter("overlap_s", "float", 120.0, 0.0, 3600.0, description="picks seen beyond each chunk edge"),
)


def association_parameters(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validated parameters; out-of-range values raise InvalidArgument naming the field and its range.

    Besides ``ASSOCIATION_PARAMETERS`` there is ``velocity_layers`` (a list of ``[depth_km, vp_km_s,
    vs_km_s]`` rows), required with ``velocity_model: "1d"`` and refused with ``"0d"``; it resolves to a
    tuple of rows (None for 0d)."""
    overrides = dict(overrides or {})
    layers = overrides.pop(LAYERS_FIELD, None)
    try:
        params = resolve_params(ASSOCIATION_PARAMETERS, overrides, what="association parameter")
    except ValueError as exc:
        raise InvalidArgument(str(exc).replace("; valid: ", f"; valid: {LAYERS_FIELD}, ", 1)) from None
    if params["velocity_model"] == "1d":
        if layers is None:
            raise InvalidArgument(f'velocity_model "1d" needs {LAYERS_FIELD}: rows [depth_km, vp_km_s, vs_km_s]')
        params[LAYERS_FIELD] = validate_layers(layers)
        return _checked_counts(params)
    if layers is not None:
        raise InvalidArgument(f'{LAYERS_FIELD} is only used with velocity_model "1d" (the request has "0d")')
    params[LAYERS_FIELD] = None
    if params["vs_km_s"] >= params["vp_km_s"]:
        raise InvalidArgument(f"vs_km_s ({params['vs_km_s']:g}) must be below vp_km_s ({params['vp_km_s']:g})")
    return _checked_counts(params)


def _checked_counts(params: dict[str, Any]) -> dict[str, Any]:
    if params["min_p_picks"] + params["min_s_picks"] > params["min_picks"] and params["min_picks"] < 3:
        raise InvalidArgument("min_picks must be at least min_p_picks + min_s_picks")
    return params


def _velocity_model(params: Mapping[str, Any], span_km: float, cache_dir: str | Path | None):
    """PyOcto's model and the slowest S velocity (for the time slices' overlap)."""
    import pyocto

    if params["velocity_model"] == "0d":
        return pyocto.VelocityModel0D(p_velocity=params["vp_km_s"], s_velocity=params["vs_km_s"],
                                      tolerance=params["tolerance_s"]), params["vs_km_s"]
    layers = params[LAYERS_FIELD]
    delta = float(params["velocity_grid_km"])
    # the table reaches every station-to-node distance of the search area, rounded up so that nearby
    # areas share one cached table; one row of nodes beyond the deepest origin (PyOcto interpolates)
    xdist = float(np.ceil((span_km + 10.0) / 50.0) * 50.0)
    zdist = float(np.ceil((params["max_depth_km"] + 2 * delta) / 10.0) * 10.0)
    if cache_dir is None:
        from quakestack.config import load_settings

        cache_dir = load_settings().cache_dir
    path = cached_table(layers, xdist, zdist, delta, cache_dir)
    model = pyocto.VelocityModel1D(path=str(path), tolerance=params["tolerance_s"],
                                   surface_p_velocity=layers[0][1], surface_s_velocity=layers[0][2])
    return model, min(row[2] for row in layers)


PYOCTO_INSTALL = ("python -m pip install --no-deps pyocto==0.2.2, as scripts/setup.sh does (a plain `pip install "
                  "pyocto` downgrades numpy below 2 under everything else on Python 3.11; PyOcto runs on numpy 2)")


def require_pyocto() -> None:
    """Refuse a catalog before any station-day is picked when association could not run at its end."""
    try:
        import pyocto  # noqa: F401
    except ImportError:
        raise FailedPrecondition(f"catalogs are associated with PyOcto, which is not installed: {PYOCTO_INSTALL}"
                                 ) from None


def _associator(stations: Mapping[str, StationCoordinates], params: Mapping[str, Any], volume: SearchVolume,
                cache_dir: str | Path | None = None):
    require_pyocto()
    import pyocto
    lats = [s.latitude for s in stations.values()]
    lons = [s.longitude for s in stations.values()]
    span_km = float(np.hypot((max(lats) - min(lats)) * 111.19 + 2 * params["margin_km"],
                             (max(lons) - min(lons)) * 111.19 + 2 * params["margin_km"]))
    model, slowest_s = _velocity_model(params, span_km, cache_dir)
    associator = pyocto.OctoAssociator.from_area(
        lat=volume.lat, lon=volume.lon, zlim=(0.0, volume.max_depth_km), time_before=float(span_km / slowest_s),
        velocity_model=model,
        n_picks=params["min_picks"], n_p_picks=params["min_p_picks"], n_s_picks=params["min_s_picks"],
        n_p_and_s_picks=params["min_p_and_s_picks"])
    table = pd.DataFrame({"id": list(stations), "latitude": lats, "longitude": lons,
                          "elevation": [s.elevation_m for s in stations.values()]})
    return associator, associator.transform_stations(table)


def event_id(prefix: str, origin_time: float) -> str:
    return f"{prefix}/event/{UTCDateTime(origin_time).strftime('%Y%m%dT%H%M%S.%f')[:-4]}"


def associate(picks: Sequence[PhasePick], stations: Mapping[str, StationCoordinates],
              params: Mapping[str, Any] | None = None, *, id_prefix: str = "smi:quakestack/catalog",
              cache_dir: str | Path | None = None) -> list[CatalogEvent]:
    """Events from picks (stations NET.STA.LOC with coordinates), in time chunks; sorted by origin time.

    ``cache_dir`` holds 1D travel-time tables (default: the settings' ``cache_dir``)."""
    params = association_parameters(params)
    unknown = sorted({p.station for p in picks} - set(stations))
    if unknown:
        raise InvalidArgument(f"picks of station(s) without coordinates: {', '.join(unknown)}")
    picks = sorted(picks, key=lambda p: (p.time, p.station, p.phase))
    if not picks:
        return []
    volume = SearchVolume.around(stations, params["margin_km"], params["max_depth_km"])
    associator, station_table = _associator(stations, params, volume, cache_dir)
    times = np.array([p.time for p in picks])
    chunk, overlap = float(params["chunk_s"]), float(params["overlap_s"])
    events: list[CatalogEvent] = []
    t = float(np.floor(times[0] / chunk) * chunk)
    while t <= times[-1]:
        lo, hi = np.searchsorted(times, t - overlap), np.searchsorted(times, t + chunk + overlap)
        events += _associate_chunk(associator, station_table, picks[lo:hi], (t, t + chunk), id_prefix)
        t += chunk
    return sorted((add_origin_quality(ev, stations, volume) for ev in events), key=lambda e: e.origin_time)


def _associate_chunk(associator, station_table: pd.DataFrame, picks: Sequence[PhasePick],
                     core: tuple[float, float], id_prefix: str) -> list[CatalogEvent]:
    if not picks:
        return []
    table = pd.DataFrame({"station": [p.station for p in picks], "phase": [p.phase for p in picks],
                          "time": [p.time for p in picks]})
    found, assignments = associator.associate(table, station_table.copy())
    if not len(found):
        return []
    found = associator.transform_events(found)
    out = []
    for row in found.itertuples():
        if not core[0] <= float(row.time) < core[1]:
            continue  # another chunk owns it
        mine = assignments[assignments["event_idx"] == row.idx]
        assigned = [(picks[int(a.pick_idx)], float(a.residual)) for a in mine.itertuples()]
        out.append(CatalogEvent(event_id(id_prefix, float(row.time)), float(row.time), float(row.latitude),
                                float(row.longitude), float(row.depth), sorted(assigned, key=lambda x: x[0].time)))
    return out


def network_magnitude(event: CatalogEvent, station_magnitudes: Mapping[str, float]) -> CatalogEvent:
    """Median of the station magnitudes, their standard deviation as spread, and their count."""
    values = {s: float(m) for s, m in station_magnitudes.items() if np.isfinite(m)}
    event.station_magnitudes = [StationMagnitude(s, m) for s, m in sorted(values.items())]
    if values:
        mags = np.array(list(values.values()))
        event.magnitude = float(np.median(mags))
        event.magnitude_spread = float(mags.std())
        event.magnitude_count = len(mags)
    return event


def first_p_per_station(event: CatalogEvent) -> dict[str, PhasePick]:
    """The station's associated P (its earliest, should there be two)."""
    out: dict[str, PhasePick] = {}
    for pick, _residual in event.picks:
        if pick.phase == "P" and (pick.station not in out or pick.time < out[pick.station].time):
            out[pick.station] = pick
    return out
