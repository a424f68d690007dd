"""STEAD reader: HDF5 ``data/<trace_name>`` float32 (6000, 3) in E, N, Z order + a metadata CSV.

Real STEAD rows are taken as they are: ``snr_db`` as a bracketed per-component string, ``None``/
``nan`` as text, float sample indices. Several (hdf5, csv) chunk pairs may be given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from obspy import UTCDateTime

from quakestack.errors import InvalidArgument

from ..records import (
    DataSourceError,
    ItemRef,
    Skipped,
    TraceRecord,
    clean_str,
    parse_float_list,
    parse_time,
)
from ..spec import ListOptions, SourceSpec
from ._common import check_array, hdf5_files, normalise_category
from .base import Located, Reader, UploadGroup, expand_inputs

NAME = "stead"
HDF5_SUFFIXES = (".hdf5", ".h5")
SAMPLING_RATE = 100.0
SOURCE_COMPONENTS = "ENZ"
REQUIRED_COLUMNS = ("trace_name", "trace_category", "network_code", "receiver_code")
_NUMERIC = (
    "p_arrival_sample",
    "s_arrival_sample",
    "p_travel_sec",
    "source_magnitude",
    "source_distance_km",
    "source_depth_km",
    "back_azimuth_deg",
    "source_latitude",
    "source_longitude",
)


def _times(df: pd.DataFrame, col: str) -> list[UTCDateTime | None]:
    """Vectorised timestamp parsing (string parsing per row dominates listing a million rows)."""
    if col not in df.columns:
        return [None] * len(df)
    text = df[col].str.strip()
    text = text.where(~text.str.lower().isin(["", "none", "nan", "null"]))
    ts = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    ns = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    ok = ~ts.isna().to_numpy()
    out: list[UTCDateTime | None] = [UTCDateTime(ns=int(v)) if good else None for v, good in zip(ns, ok, strict=True)]
    # anything pandas could not parse gets ObsPy's parser (and None if that fails too)
    for i in np.nonzero(~ok & text.notna().to_numpy())[0]:
        out[i] = parse_time(text.iloc[i])
    return out


def read_metadata(csv_path: str) -> pd.DataFrame:
    """Read a STEAD CSV as text (no type guessing) and check its required columns."""
    try:
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataSourceError(csv_path, "metadata CSV not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataSourceError(csv_path, f"cannot parse metadata CSV: {exc}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataSourceError(csv_path, f"metadata CSV is missing required columns: {', '.join(missing)}")
    return df


def _check_hdf5(hdf5_path: str) -> None:
    """Open the file once at planning time so that a corrupt or foreign file fails the job early."""
    try:
        with h5py.File(hdf5_path, "r") as f:
            if "data" not in f:
                raise DataSourceError(hdf5_path, "HDF5 file has no 'data' group (not a STEAD file)")
    except FileNotFoundError:
        raise DataSourceError(hdf5_path, "HDF5 file not found") from None
    except OSError as exc:
        raise DataSourceError(hdf5_path, f"cannot open HDF5 file: {exc}") from None


def list_pairs(pairs: Sequence[tuple[str, str]]) -> list[ItemRef | Skipped]:
    """List the traces of (hdf5, csv) pairs from the CSVs alone (no waveform reads)."""
    out: list[ItemRef | Skipped] = []
    for hdf5_path, csv_path in pairs:
        _check_hdf5(hdf5_path)
        df = read_metadata(csv_path)
        nums = {
            c: pd.to_numeric(df[c].str.strip(), errors="coerce").to_numpy(float) if c in df else None for c in _NUMERIC
        }
        start_times = _times(df, "trace_start_time")
        origin_times = _times(df, "source_origin_time")
        seen: set[str] = set()
        cols = df.columns
        csv_name = os.path.basename(csv_path)
        for i, row in enumerate(df.itertuples(index=False, name=None)):
            r = dict(zip(cols, row, strict=True))
            name = clean_str(r["trace_name"])
            if name is None:
                out.append(Skipped(csv_name, f"row {i + 2}", "empty trace_name"))
                continue
            if name in seen:
                out.append(Skipped(csv_name, name, "duplicate trace_name in metadata CSV"))
                continue
            seen.add(name)

            def num(col: str, i: int = i, nums: dict = nums) -> float | None:
                arr = nums.get(col)
                return None if arr is None or np.isnan(arr[i]) else float(arr[i])

            snr = parse_float_list(r.get("snr_db"))
            raw_cat = clean_str(r["trace_category"])
            category = normalise_category(raw_cat)
            extra = {"trace_category_raw": raw_cat}
            for col in ("receiver_type", "p_status", "s_status", "source_magnitude_author"):
                if clean_str(r.get(col)) is not None:
                    extra[col] = clean_str(r.get(col))
            coda = parse_float_list(r.get("coda_end_sample"))
            if coda:
                extra["coda_end_sample"] = coda[0]
            mtype = clean_str(r.get("source_magnitude_type"))
            out.append(
                ItemRef(
                    reader=NAME,
                    source=hdf5_path,
                    locator={"dataset": f"data/{name}"},
                    trace_name=name,
                    station=f"{clean_str(r['network_code']) or ''}.{clean_str(r['receiver_code']) or ''}.",
                    category=category,
                    sampling_rate=SAMPLING_RATE,
                    start_time=start_times[i],
                    event_id=None if category == "noise" else clean_str(r.get("source_id")),
                    p_arrival_sample=num("p_arrival_sample"),
                    s_arrival_sample=num("s_arrival_sample"),
                    p_travel_s=num("p_travel_sec"),
                    magnitude=num("source_magnitude"),
                    magnitude_type=mtype.lower() if mtype else None,
                    distance_km=num("source_distance_km"),
                    depth_km=num("source_depth_km"),
                    snr_db=float(np.mean(snr)) if snr else None,
                    snr_db_components=snr,
                    back_azimuth=num("back_azimuth_deg"),
                    source_latitude=num("source_latitude"),
                    source_longitude=num("source_longitude"),
                    origin_time=origin_times[i],
                    extra=extra,
                )
            )
    return out


def _to_record(item: ItemRef, data: np.ndarray) -> TraceRecord:
    meta = item.label_fields()
    # ENZ (L, 3) -> ZNE (3, L): one fancy-index copy makes the result contiguous float32.
    arr = np.ascontiguousarray(data.T[::-1], dtype=np.float32)
    return TraceRecord(data=arr, component_order="ZNE", **meta)


def _read_one(f: h5py.File, item: ItemRef, src: str) -> TraceRecord | Skipped:
    dset = f.get(item.locator["dataset"])
    if dset is None:
        return Skipped(src, item.trace_name, "trace listed in metadata CSV but missing from HDF5 file")
    if not isinstance(dset, h5py.Dataset):
        return Skipped(src, item.trace_name, "HDF5 object is a group, not a dataset")
    if len(dset.shape) != 2 or dset.shape[1] != 3:
        return Skipped(src, item.trace_name, "wrong shape, expected (n_samples, 3) ENZ", f"shape {tuple(dset.shape)}")
    try:
        data = dset[()]
    except (OSError, RuntimeError) as exc:
        return Skipped(src, item.trace_name, "cannot read trace data", str(exc))
    bad = check_array(data.T, src, item.trace_name)
    if bad is not None:
        return bad
    return _to_record(item, data)


def load_many(items: Sequence[ItemRef]) -> list[TraceRecord | Skipped]:
    """Load traces in order, opening each HDF5 file once (reads go file by file, in HDF5 name order)."""
    out: list[TraceRecord | Skipped | None] = [None] * len(items)
    for f, src, idx in hdf5_files(items, out):
        for i in sorted(idx, key=lambda k: items[k].trace_name):
            out[i] = _read_one(f, items[i], src)
    return out  # type: ignore[return-value]


def pair_files(hdf5_paths: Sequence[str], csv_paths: Sequence[str]) -> list[tuple[str, str]]:
    """STEAD's one pairing rule: each HDF5 file with the CSV of its stem; a lone HDF5 with a lone CSV.

    InvalidArgument names what is missing (callers say where they looked).
    """
    h5 = list(hdf5_paths)
    if not h5:
        raise InvalidArgument("no .hdf5 file")
    csvs = sorted(csv_paths)
    by_stem = {Path(p).stem: p for p in csvs}
    pairs = []
    for path in h5:
        csv = by_stem.get(Path(path).stem) or (csvs[0] if len(h5) == 1 and len(csvs) == 1 else None)
        if csv is None:
            raise InvalidArgument(f"no metadata CSV {Path(path).stem}.csv for {path}")
        pairs.append((path, csv))
    return pairs


def _is_hdf5(path: str) -> bool:
    return path.lower().endswith(HDF5_SUFFIXES)


class SteadReader(Reader):
    """STEAD chunks: (HDF5, CSV) pairs; an upload or prefix holds both files of each pair."""

    name = NAME
    summary = "HDF5 + metadata CSV"

    def check_source(self, source: SourceSpec) -> None:
        if source.metadata_paths and len(source.metadata_paths) != len(source.paths):
            raise ValueError("stead source: metadata_paths must pair one CSV with each HDF5 path")

    def pairs(self, source: SourceSpec) -> list[tuple[str, str]]:
        csvs = source.metadata_paths or [os.path.splitext(p)[0] + ".csv" for p in source.paths]
        return list(zip(source.paths, csvs, strict=True))

    def list_items(self, source: SourceSpec, options: ListOptions) -> list[ItemRef | Skipped]:
        return list_pairs(self.pairs(source))

    def load_many(self, items: Sequence[ItemRef]) -> list[TraceRecord | Skipped]:
        return load_many(items)

    def resolve(self, waveforms: Located, catalog: Located | None, catalog_format: str | None,
                name: str) -> SourceSpec:
        candidates = list(waveforms.files) + (list(catalog.files) if catalog else [])
        h5 = sorted(p for p in waveforms.files if _is_hdf5(p))
        if not h5:
            raise InvalidArgument(f"{name}: no .hdf5 file in {waveforms.display}")
        try:
            pairs = pair_files(h5, [p for p in candidates if p.lower().endswith(".csv")])
        except InvalidArgument as exc:
            raise InvalidArgument(f"{name}: {exc}") from None
        return SourceSpec(NAME, [p for p, _ in pairs], metadata_paths=[c for _, c in pairs], name=name)

    def sniff(self, path: Path) -> int:
        if path.is_dir():
            return 2 if any(_is_hdf5(f.name) for f in path.iterdir()) else 0
        return 2 if path.suffix.lower() in (*HDF5_SUFFIXES, ".csv") else 0

    def local_pairs(self, inputs: Sequence[str]) -> list[tuple[Path, Path]]:
        files = expand_inputs(inputs, (*HDF5_SUFFIXES, ".csv"))
        h5 = [str(f) for f in files if _is_hdf5(f.name)]
        if not h5:
            raise InvalidArgument("a STEAD source needs .hdf5 files with their metadata .csv")
        pairs = pair_files(h5, [str(f) for f in files if f.suffix.lower() == ".csv"])
        return [(Path(h), Path(c)) for h, c in pairs]

    def check_inputs(self, inputs: Sequence[str], catalog: str | None, window_s: float) -> None:
        self.local_pairs(inputs)

    def upload_groups(self, inputs: Sequence[str], catalog: str | None) -> list[UploadGroup]:
        """One source per pair: the HDF5 file as the waveforms, its CSV as the catalog."""
        return [UploadGroup([h], c) for h, c in self.local_pairs(inputs)]


READER = SteadReader()
