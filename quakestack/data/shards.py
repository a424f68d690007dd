"""SeisBench-compatible shards: ``metadata.csv`` + ``waveforms.hdf5`` with ONE contiguous block.

The block ``data/bucket0`` has shape (N, C, L) and each row's ``trace_name`` is ``bucket0$i,:C,:L``, so a
downloaded shard opens with ``seisbench.data.WaveformDataset`` and the trainer reads it in one call.
Files are byte-deterministic: no HDF5 timestamps, fixed libver, no compression, no chunking, fixed
float formatting in the CSV, fixed column order.

float16 shards: raw counts easily exceed float16's range (65504), so each trace whose peak would
overflow is stored divided by a power of two (exact: only the exponent changes), recorded in
``trace_amplitude_scale``; :func:`read_shard` multiplies it back unless ``rescale=False``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np
import pandas as pd

from quakestack.digests import file_sha256

WAVEFORMS = "waveforms.hdf5"
METADATA = "metadata.csv"
BLOCK = "bucket0"
PLAN_ATTR = "quakestack_plan_sha256"
DTYPES = ("float32", "float16")

SHARD_COLUMNS = (
    "trace_name",
    "trace_sampling_rate_hz",
    "trace_p_arrival_sample",
    "trace_s_arrival_sample",
    "source_magnitude",
    "source_magnitude_type",
    "source_id",
    "split",
    "trace_category",
    "station_network_code",
    "station_code",
    "station_location_code",
    "path_p_travel_sec",
    "path_ep_distance_km",
    "path_back_azimuth_deg",
    "source_depth_km",
    "trace_snr_db",
    "trace_start_time",
    "source_origin_time",
    "source_latitude_deg",
    "source_longitude_deg",
    "location_cluster",
    "trace_source_name",
    "trace_amplitude_scale",
    "trace_gap_filled_samples",  # samples of the window the gap policy filled (0: none)
)
FLOAT16_LIMIT = 60000.0  # a little under float16's max (65504)


def _fmt(value: Any) -> str:
    """Deterministic text for one CSV cell: '' for missing, repr for floats (exact round trip)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return ""
        return repr(v)
    return str(value)


def write_shard(
    directory: str,
    data: np.ndarray,
    rows: Sequence[dict[str, Any]],
    component_order: str,
    sampling_rate: float,
    dtype: str = "float32",
    plan_sha256: str | None = None,
    extra_attrs: dict[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """Write one shard; ``rows[i]`` describes ``data[i]`` (its ``trace_name`` is set here).

    Returns {"files": {name: path}, "sha256": {name: hex}}. Files are written under temporary names
    and renamed, so a crash never leaves a half-written shard behind under the final names.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    n = len(rows)
    if data.ndim != 3 or data.shape[0] != n:
        raise ValueError(f"data must be (N, C, L) with N == len(rows) ({n}), got {data.shape}")
    c, length = data.shape[1], data.shape[2]
    if c != len(component_order):
        raise ValueError(f"{c} channels but component order {component_order!r}")
    os.makedirs(directory, exist_ok=True)
    h5_path = os.path.join(directory, WAVEFORMS)
    csv_path = os.path.join(directory, METADATA)
    scales = np.ones(n, dtype=np.float64)
    if dtype == "float16" and n:
        peak = np.abs(data).reshape(n, -1).max(axis=1).astype(np.float64)
        over = peak > FLOAT16_LIMIT
        scales[over] = 2.0 ** np.ceil(np.log2(peak[over] / FLOAT16_LIMIT))
        data = data / scales[:, None, None].astype(data.dtype)
    block = np.ascontiguousarray(data, dtype=np.dtype(dtype))
    tmp_h5, tmp_csv = h5_path + ".part", csv_path + ".part"
    with h5py.File(tmp_h5, "w", libver=("v110", "v110"), track_order=False) as f:
        if plan_sha256:
            f.attrs[PLAN_ATTR] = plan_sha256
        for k, v in sorted((extra_attrs or {}).items()):
            f.attrs[k] = v
        fmt = f.create_group("data_format", track_order=False)
        for key, value in (
            ("component_order", component_order),
            ("dimension_order", "CW"),
            ("instrument_response", "not restituted"),
            ("measurement", "velocity"),
            ("sampling_rate", float(sampling_rate)),
            ("unit", "counts"),
        ):
            fmt.create_dataset(key, data=value, track_times=False)
        g = f.create_group("data", track_order=False)
        g.create_dataset(BLOCK, data=block, track_times=False)
    with open(tmp_csv, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(SHARD_COLUMNS)
        for i, row in enumerate(rows):
            cells = dict(row, trace_name=f"{BLOCK}${i},:{c},:{length}", trace_amplitude_scale=float(scales[i]))
            w.writerow([_fmt(cells.get(col)) for col in SHARD_COLUMNS])
    os.replace(tmp_h5, h5_path)
    os.replace(tmp_csv, csv_path)
    return {
        "files": {WAVEFORMS: h5_path, METADATA: csv_path},
        "sha256": {WAVEFORMS: file_sha256(h5_path), METADATA: file_sha256(csv_path)},
    }


def shard_plan_sha256(directory: str) -> str | None:
    """The plan hash a finished shard was built from (None if absent, incomplete or unreadable)."""
    h5_path = os.path.join(directory, WAVEFORMS)
    if not (os.path.isfile(h5_path) and os.path.isfile(os.path.join(directory, METADATA))):
        return None
    try:
        with h5py.File(h5_path, "r") as f:
            value = f.attrs.get(PLAN_ATTR)
    except OSError:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    return None if value is None else str(value)


def read_shard(directory: str, dtype: str | None = None, rescale: bool = True) -> tuple[np.ndarray, pd.DataFrame]:
    """Read a whole shard at once: the (N, C, L) block and its metadata.

    The block keeps its stored dtype unless ``dtype`` is given; with ``rescale`` a float16 block with
    scaled traces comes back as float32 in the original units.
    """
    with h5py.File(os.path.join(directory, WAVEFORMS), "r") as f:
        block = f["data"][BLOCK][()]
    meta = pd.read_csv(
        os.path.join(directory, METADATA),
        keep_default_na=True,
        dtype={
            "source_id": str,
            "station_location_code": str,
            "station_code": str,
            "station_network_code": str,
        },
    )
    if len(meta) != block.shape[0]:
        raise ValueError(f"{directory}: metadata has {len(meta)} rows but the block holds {block.shape[0]}")
    if rescale and "trace_amplitude_scale" in meta and (meta.trace_amplitude_scale.fillna(1.0) != 1.0).any():
        block = block.astype(np.float32) * meta.trace_amplitude_scale.fillna(1.0).to_numpy(np.float32)[:, None, None]
    return (block if dtype is None else block.astype(dtype)), meta
