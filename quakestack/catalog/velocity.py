"""Layered (1D) velocity models for association: validation and PyOcto travel-time tables, cached on disk.

A layered model is a list of rows ``[depth_km, vp_km_s, vs_km_s]``: each row is the top of a layer of
constant velocities that reaches down to the next row's depth; the last row is a half-space. PyOcto's
``VelocityModel1D`` reads a binary table of first-arrival times from a surface station to every node
(x = horizontal distance, z = depth) of a grid: header ``int nx, int nz, double delta`` then the P and
the S times as float64 arrays of shape ``(nx, nz)``.

PyOcto's own ``VelocityModel1D.create_model`` needs pyrocko's eikonal solver, and pyrocko pins
``numpy<2`` on Python 3.11 (its wheels are built against numpy 1), which the platform's numpy 2 rules
out. So the tables are computed here, exactly for constant-velocity layers by ray theory: the direct
ray (its ray parameter found by bisection on the distance it travels) and the head wave along every
deeper, faster interface; the first arrival is the least of them. A homogeneous model gives
``hypot(x, z) / v`` to rounding.

Each distinct (layers, grid) table is built once into ``<cache_dir>/velocity-models/<sha256>.tt``:
written to a temporary file in the same directory and renamed into place, so two processes building
the same table at once both end with a whole file and a reader never sees a partial one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from quakestack.errors import InvalidArgument

FIELD = "velocity_layers"
MAX_LAYERS = 100
MAX_DEPTH_KM = 700.0
VP_RANGE = (0.5, 14.0)
VS_RANGE = (0.1, 8.0)
MAX_TABLE_NODES = 4_000_000  # ~64 MB of float64 for both phases
TABLE_VERSION = 1  # part of the cache key: a change in how tables are computed invalidates old files
_HEADER = struct.Struct("iid")

Layers = tuple[tuple[float, float, float], ...]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{where} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidArgument(f"{where} must be finite, got {value!r}")
    return number


def validate_layers(value: Any) -> Layers:
    """Rows ``[depth_km, vp_km_s, vs_km_s]`` (lists of numbers, as a protobuf Struct delivers them, or their
    JSON text): depths increasing from 0, ``vp > vs > 0`` within range. Anything else is InvalidArgument
    naming the field, the row and what is wrong."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidArgument(f"{FIELD} must be a list of [depth_km, vp_km_s, vs_km_s] rows, got text that "
                                  "is not JSON") from None
    if not isinstance(value, (list, tuple)) or not value:
        raise InvalidArgument(f"{FIELD} must be a non-empty list of [depth_km, vp_km_s, vs_km_s] rows, "
                              f"got {value!r}")
    if len(value) > MAX_LAYERS:
        raise InvalidArgument(f"{FIELD} may have at most {MAX_LAYERS} rows, got {len(value)}")
    rows: list[tuple[float, float, float]] = []
    for i, row in enumerate(value):
        where = f"{FIELD}[{i}]"
        if not isinstance(row, (list, tuple)) or len(row) != 3:
            raise InvalidArgument(f"{where} must be [depth_km, vp_km_s, vs_km_s], got {row!r}")
        depth, vp, vs = (_number(x, f"{where}.{name}") for x, name in zip(row, ("depth_km", "vp_km_s", "vs_km_s"),
                                                                          strict=True))
        if i == 0 and depth != 0.0:
            raise InvalidArgument(f"{FIELD}[0].depth_km must be 0 (the first layer starts at the surface), "
                                  f"got {depth:g}")
        if rows and depth <= rows[-1][0]:
            raise InvalidArgument(f"{where}.depth_km ({depth:g}) must be greater than the row above "
                                  f"({rows[-1][0]:g}): depths increase downwards")
        if depth > MAX_DEPTH_KM:
            raise InvalidArgument(f"{where}.depth_km must be in [0, {MAX_DEPTH_KM:g}], got {depth:g}")
        if not VP_RANGE[0] <= vp <= VP_RANGE[1]:
            raise InvalidArgument(f"{where}.vp_km_s must be in [{VP_RANGE[0]:g}, {VP_RANGE[1]:g}], got {vp:g}")
        if not VS_RANGE[0] <= vs <= VS_RANGE[1]:
            raise InvalidArgument(f"{where}.vs_km_s must be in [{VS_RANGE[0]:g}, {VS_RANGE[1]:g}], got {vs:g}")
        if vs >= vp:
            raise InvalidArgument(f"{where}.vs_km_s ({vs:g}) must be below vp_km_s ({vp:g})")
        rows.append((depth, vp, vs))
    return tuple(rows)


def first_arrival_times(depths: Sequence[float], velocities: Sequence[float], x_km: np.ndarray,
                        z_km: np.ndarray) -> np.ndarray:
    """First-arrival times [len(x), len(z)] from a surface source at x = 0 through constant-velocity layers
    (tops ``depths``, ``velocities``) to receivers at horizontal distance x and depth z (km, s)."""
    tops = np.asarray(depths, float)
    v = np.asarray(velocities, float)
    bottoms = np.append(tops[1:], np.inf)
    x = np.asarray(x_km, float)
    out = np.empty((x.size, len(z_km)))
    for j, z in enumerate(np.asarray(z_km, float)):
        thickness = np.clip(np.minimum(bottoms, z) - tops, 0.0, None)  # of each layer above z
        out[:, j] = np.minimum(_direct_times(thickness, v, x), _head_wave_times(tops, v, thickness, x, z))
    return out


def _direct_times(h: np.ndarray, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    crossed = h > 0
    if not crossed.any():  # a receiver at the surface: along it in the top layer
        return x / v[0]
    h, v = h[crossed], v[crossed]
    vmax = v.max()
    # u = p * vmax in [0, 1): the distance the ray travels grows monotonically to infinity with u
    lo, hi = np.zeros_like(x), np.ones_like(x)
    for _ in range(64):
        u = 0.5 * (lo + hi)
        s = u[:, None] * (v / vmax)[None, :]  # sin of the angle from vertical in each layer
        reach = (h[None, :] * s / np.sqrt(1.0 - s * s)).sum(axis=1)
        farther = reach > x
        hi = np.where(farther, u, hi)
        lo = np.where(farther, lo, u)
    s = (0.5 * (lo + hi))[:, None] * (v / vmax)[None, :]
    cos = np.sqrt(1.0 - s * s)
    # time along the ray, corrected to the exact distance by the ray parameter (dt/dx = p)
    reach = (h[None, :] * s / cos).sum(axis=1)
    times = (h[None, :] / (v[None, :] * cos)).sum(axis=1)
    return times + (x - reach) * (0.5 * (lo + hi)) / vmax


def _head_wave_times(tops: np.ndarray, v: np.ndarray, h_above: np.ndarray, x: np.ndarray, z: float) -> np.ndarray:
    best = np.full_like(x, np.inf)
    for m in range(1, len(tops)):
        if tops[m] < z or v[m] <= v[:m].max():
            continue  # the receiver is below this interface, or no layer above is slower: no head wave
        full = np.diff(tops[:m + 1])  # every layer from the surface down to the interface
        up = full - h_above[:m]  # the part of each layer between the receiver and the interface
        legs = full + up
        ratio = v[:m] / v[m]
        critical_reach = float((legs * ratio / np.sqrt(1.0 - ratio**2)).sum())
        delay = float((legs * np.sqrt(1.0 / v[:m] ** 2 - 1.0 / v[m] ** 2)).sum())
        best = np.where(x >= critical_reach, np.minimum(best, x / v[m] + delay), best)
    return best


def table_grid(xdist_km: float, zdist_km: float, delta_km: float) -> tuple[int, int]:
    nx, nz = int(math.ceil(xdist_km / delta_km)) + 1, int(math.ceil(zdist_km / delta_km)) + 1
    if nx * nz > MAX_TABLE_NODES:
        raise InvalidArgument(f"the travel-time table would have {nx * nz} nodes ({nx} x {nz}; the most is "
                              f"{MAX_TABLE_NODES}): raise velocity_grid_km or narrow the area / max_depth_km")
    return nx, nz


def table_bytes(layers: Layers, xdist_km: float, zdist_km: float, delta_km: float) -> bytes:
    """PyOcto's binary travel-time table for ``layers`` on a grid reaching ``xdist_km`` x ``zdist_km``."""
    nx, nz = table_grid(xdist_km, zdist_km, delta_km)
    x, z = np.arange(nx) * delta_km, np.arange(nz) * delta_km
    depths = [row[0] for row in layers]
    p = first_arrival_times(depths, [row[1] for row in layers], x, z)
    s = first_arrival_times(depths, [row[2] for row in layers], x, z)
    return _HEADER.pack(nx, nz, float(delta_km)) + np.ascontiguousarray(p).tobytes() + \
        np.ascontiguousarray(s).tobytes()


def table_key(layers: Layers, xdist_km: float, zdist_km: float, delta_km: float) -> str:
    text = json.dumps({"version": TABLE_VERSION, "layers": [list(r) for r in layers], "xdist_km": xdist_km,
                       "zdist_km": zdist_km, "delta_km": delta_km}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def cached_table(layers: Layers, xdist_km: float, zdist_km: float, delta_km: float, cache_dir: str | Path) -> Path:
    """The table's path in ``cache_dir``, built first when absent (atomically: temporary file, then rename)."""
    directory = Path(cache_dir) / "velocity-models"
    path = directory / f"{table_key(layers, xdist_km, zdist_km, delta_km)}.tt"
    nx, nz = table_grid(xdist_km, zdist_km, delta_km)
    if path.is_file() and path.stat().st_size == _HEADER.size + 2 * 8 * nx * nz:
        return path
    directory.mkdir(parents=True, exist_ok=True)
    data = table_bytes(layers, xdist_km, zdist_km, delta_km)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.stem[:16]}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: concurrent builders both land a whole, identical file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
