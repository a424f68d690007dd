"""SeisBench-format reader: ``metadata<chunk>.csv`` + ``waveforms<chunk>.hdf5`` per dataset directory.

The HDF5 ``data_format`` group gives ``dimension_order`` (default "CW"), ``component_order`` and
``sampling_rate``; traces are either individual datasets ``data/<trace_name>`` or slices of block
datasets named ``<block>$<numpy slice>`` (e.g. ``bucket3$5,:3,:6000``). Our own shards are read here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from quakestack.errors import InvalidArgument

from ..records import (
    DataSourceError,
    ItemRef,
    Skipped,
    TraceRecord,
    clean_float,
    clean_str,
    parse_float_list,
    parse_time,
)
from ..spec import ListOptions, SourceSpec
from ._common import check_array, hdf5_files, normalise_category
from .base import Located, Reader, UploadGroup

NAME = "seisbench"


def find_chunks(directory: str) -> list[str]:
    """Chunks of a dataset directory: [""] for an unchunked one, else the suffixes present in both files."""
    d = Path(directory)
    if not d.is_dir():
        raise DataSourceError(directory, "SeisBench dataset directory not found")
    chunks_file = d / "chunks"
    if chunks_file.is_file():
        listed = [c.strip() for c in chunks_file.read_text().splitlines() if c.strip()]
        if listed:
            return sorted(listed)
    if (d / "waveforms.hdf5").is_file() and (d / "metadata.csv").is_file():
        return [""]
    metas = {p.name[len("metadata") : -len(".csv")] for p in d.glob("metadata*.csv")}
    waves = {p.name[len("waveforms") : -len(".hdf5")] for p in d.glob("waveforms*.hdf5")}
    if not metas & waves:
        raise DataSourceError(directory, "no metadata*.csv / waveforms*.hdf5 pair found")
    return sorted(metas & waves)


def read_data_format(hdf5_path: str) -> dict[str, Any]:
    """Read the ``data_format`` group (datasets or attributes), decoding bytes."""
    try:
        with h5py.File(hdf5_path, "r") as f:
            if "data" not in f:
                raise DataSourceError(hdf5_path, "HDF5 file has no 'data' group")
            fmt: dict[str, Any] = {}
            g = f.get("data_format")
            if g is not None:
                fmt.update({k: g.attrs[k] for k in g.attrs})
                fmt.update({k: g[k][()] for k in g})
    except FileNotFoundError:
        raise DataSourceError(hdf5_path, "HDF5 file not found") from None
    except OSError as exc:
        raise DataSourceError(hdf5_path, f"cannot open HDF5 file: {exc}") from None
    for k, v in list(fmt.items()):
        if isinstance(v, bytes):
            fmt[k] = v.decode()
        elif isinstance(v, np.ndarray) and v.ndim == 0 or isinstance(v, np.generic):
            fmt[k] = v.item()
    fmt.setdefault("dimension_order", "CW")
    return fmt


def parse_location(location: str) -> tuple[int | slice | None, ...]:
    """Parse a numpy-style location ('5,:3,:6000', ':') into an index tuple."""
    parts: list[int | slice | None] = []
    for dim in location.replace(" ", "").split(","):
        pieces = [None if p == "" else int(p) for p in dim.split(":")]
        if len(pieces) == 1:
            parts.append(pieces[0])
        elif len(pieces) in (2, 3):
            parts.append(slice(*pieces))
        else:
            raise ValueError(f"invalid location {location!r}")
    return tuple(parts)


def _pick_column(columns: Sequence[str], kind: str) -> str | None:
    """Column of the first P (or S) arrival label: trace_p_arrival_sample, trace_P_..., trace_Pg_..."""
    exact = [f"trace_{kind.lower()}_arrival_sample", f"trace_{kind.upper()}_arrival_sample"]
    for c in exact:
        if c in columns:
            return c
    for c in columns:
        if c.startswith(f"trace_{kind.upper()}") and c.endswith("_arrival_sample"):
            return c
    return None


def list_directories(directories: Sequence[str]) -> list[ItemRef | Skipped]:
    """List the traces of SeisBench dataset directories from their metadata (no waveform reads)."""
    out: list[ItemRef | Skipped] = []
    for directory in directories:
        for chunk in find_chunks(directory):
            csv_path = os.path.join(directory, f"metadata{chunk}.csv")
            h5_path = os.path.join(directory, f"waveforms{chunk}.hdf5")
            fmt = read_data_format(h5_path)
            try:
                df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
                raise DataSourceError(csv_path, f"cannot parse metadata CSV: {exc}") from None
            if "trace_name" not in df.columns:
                raise DataSourceError(csv_path, "metadata CSV is missing required columns: trace_name")
            out.extend(_items_from_frame(df, fmt, h5_path, csv_path))
    return out


def _items_from_frame(df: pd.DataFrame, fmt: dict[str, Any], h5_path: str, csv_path: str) -> list:
    out: list[ItemRef | Skipped] = []
    p_col, s_col = _pick_column(df.columns, "p"), _pick_column(df.columns, "s")
    src = os.path.basename(csv_path)
    seen: set[str] = set()
    for i, r in enumerate(df.to_dict("records")):
        name = clean_str(r.get("trace_name"))
        if name is None:
            out.append(Skipped(src, f"row {i + 2}", "empty trace_name"))
            continue
        if name in seen:
            out.append(Skipped(src, name, "duplicate trace_name in metadata CSV"))
            continue
        seen.add(name)
        rate = clean_float(r.get("trace_sampling_rate_hz"))
        if rate is None and clean_float(r.get("trace_dt_s")):
            rate = 1.0 / clean_float(r.get("trace_dt_s"))  # type: ignore[operator]
        if rate is None:
            rate = clean_float(fmt.get("sampling_rate"))
        if rate is None or rate <= 0:
            out.append(Skipped(src, name, "unknown or invalid sampling rate"))
            continue
        comp = clean_str(r.get("trace_component_order")) or str(fmt.get("component_order", "ZNE"))
        station = ".".join(
            clean_str(r.get(c)) or "" for c in ("station_network_code", "station_code", "station_location_code")
        )
        category = normalise_category(clean_str(r.get("trace_category")) or clean_str(r.get("source_type")))
        snr = parse_float_list(r.get("trace_snr_db"))
        mtype = clean_str(r.get("source_magnitude_type"))
        cluster = clean_float(r.get("location_cluster"))
        extra = {k: r[k] for k in ("split",) if clean_str(r.get(k)) is not None}
        out.append(
            ItemRef(
                reader=NAME,
                source=h5_path,
                locator={"trace_name": name, "dimension_order": str(fmt["dimension_order"])},
                trace_name=name,
                station=station,
                category=category,
                sampling_rate=rate,
                start_time=parse_time(r.get("trace_start_time")),
                event_id=None if category == "noise" else clean_str(r.get("source_id")),
                p_arrival_sample=clean_float(r.get(p_col)) if p_col else None,
                s_arrival_sample=clean_float(r.get(s_col)) if s_col else None,
                p_travel_s=clean_float(r.get("path_p_travel_sec")),
                magnitude=clean_float(r.get("source_magnitude")),
                magnitude_type=mtype.lower() if mtype else None,
                distance_km=clean_float(r.get("path_ep_distance_km")),
                depth_km=clean_float(r.get("source_depth_km")),
                snr_db=float(np.mean(snr)) if snr else None,
                snr_db_components=snr,
                back_azimuth=clean_float(r.get("path_back_azimuth_deg")),
                source_latitude=clean_float(r.get("source_latitude_deg")),
                source_longitude=clean_float(r.get("source_longitude_deg")),
                origin_time=parse_time(r.get("source_origin_time")),
                location_cluster=int(cluster) if cluster is not None else -1,
                extra={**extra, "component_order": comp},
            )
        )
    return out


def _as_cw(arr: np.ndarray, dim_order: str) -> np.ndarray:
    """Bring one trace to (C, W) whatever the dataset's dimension order ('CW', 'WC', or 'NCW' sliced)."""
    order = dim_order.replace("N", "")
    if arr.ndim == 1:
        arr = arr[None, :]
    if order == "WC":
        arr = arr.T
    return np.ascontiguousarray(arr, dtype=np.float32)


def load_many(items: Sequence[ItemRef]) -> list[TraceRecord | Skipped]:
    """Load traces in order; each file opened once, a block read whole when several traces share it."""
    out: list[TraceRecord | Skipped | None] = [None] * len(items)
    for f, src, idx in hdf5_files(items, out):
        blocks: dict[str, int] = {}
        for i in idx:
            name = items[i].locator["trace_name"]
            if "$" in name:
                b = name.split("$", 1)[0]
                blocks[b] = blocks.get(b, 0) + 1
        cache: dict[str, np.ndarray] = {}
        for i in idx:
            out[i] = _load_one(f, items[i], src, blocks, cache)
    return out  # type: ignore[return-value]


def _load_one(
    f: h5py.File, item: ItemRef, src: str, blocks: dict[str, int], cache: dict[str, np.ndarray]
) -> TraceRecord | Skipped:
    name = item.locator["trace_name"]
    block, location = name.split("$", 1) if "$" in name else (name, ":")
    dset = f["data"].get(block)
    if not isinstance(dset, h5py.Dataset):
        return Skipped(src, item.trace_name, "trace missing from HDF5 file", f"no dataset data/{block}")
    try:
        loc = parse_location(location)
        if blocks.get(block, 0) > 1:
            if block not in cache:
                cache[block] = dset[()]
            arr = cache[block][loc]
        else:
            arr = dset[loc]
    except (ValueError, IndexError, TypeError) as exc:
        return Skipped(src, item.trace_name, "bad trace location", f"{location!r}: {exc}")
    except OSError as exc:
        return Skipped(src, item.trace_name, "cannot read trace data", str(exc))
    arr = np.asarray(arr)
    if arr.ndim not in (1, 2):
        return Skipped(src, item.trace_name, "wrong shape, expected one (C, W) trace", f"shape {arr.shape}")
    data = _as_cw(arr, item.locator["dimension_order"])
    bad = check_array(data, src, item.trace_name)
    if bad is not None:
        return bad
    meta = item.label_fields()
    comp = meta["extra"].pop("component_order", "ZNE")
    if len(comp) != data.shape[0]:
        return Skipped(
            src,
            item.trace_name,
            "channel count does not match component order",
            f"{data.shape[0]} channels, component order {comp!r}",
        )
    return TraceRecord(data=data, component_order=comp, **meta)


def load(item: ItemRef) -> TraceRecord | Skipped:
    """Load one trace (prefer :func:`load_many` for many)."""
    return load_many([item])[0]


class SeisBenchReader(Reader):
    """SeisBench dataset folders (one per source: a local folder or an object-key prefix)."""

    name = NAME
    summary = "a folder"

    def list_items(self, source: SourceSpec, options: ListOptions) -> list[ItemRef | Skipped]:
        return list_directories(source.paths)

    def load_many(self, items: Sequence[ItemRef]) -> list[TraceRecord | Skipped]:
        return load_many(items)

    def resolve(self, waveforms: Located, catalog: Located | None, catalog_format: str | None,
                name: str) -> SourceSpec:
        if not waveforms.is_dir:
            raise InvalidArgument(f"{name}: a SeisBench source is a directory / key prefix, got {waveforms.display}")
        return SourceSpec(NAME, [waveforms.root], name=name)

    def sniff(self, path: Path) -> int:
        if not path.is_dir():
            return 0
        names = {f.name.lower() for f in path.iterdir()}
        if "metadata.csv" in names and any(n.startswith("waveforms") and n.endswith((".hdf5", ".h5")) for n in names):
            return 3
        return 0

    def upload_groups(self, inputs: Sequence[str], catalog: str | None) -> list[UploadGroup]:
        raise InvalidArgument("a SeisBench dataset is a folder of files: give it with --local (allow-listed on "
                              "the server) or --keys (an object prefix); UploadFile stores one file per upload")


READER = SeisBenchReader()
