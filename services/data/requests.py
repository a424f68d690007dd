"""CreateDatasetRequest -> library dataclasses: defaults of the contract, checks before a job exists.

Everything that can be refused without reading a source file is refused here, in the RPC, with
INVALID_ARGUMENT; the library dataclasses' own checks (ValueError) are turned into the same status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from quakestack.config import Settings
from quakestack.data import FilterSpec, PreprocessSpec, SplitSpec, WindowSpec, readers
from quakestack.data.jobs import build_spec
from quakestack.data.spec import DEFAULT_NOISE_MARGIN_S
from quakestack.errors import InvalidArgument
from quakestack.inference.quality import DEFAULT_MAX_UPSAMPLING
from quakestack.jsonmap import enum_value_text
from quakestack.storage import ObjectStore, validate_name
from quakestack.v1 import data_pb2
from services.data.sources import check_location

DEFAULT_SHARD_SIZE = 1024
SOURCE_PREFIX, CATALOG_PREFIX = "SOURCE_FORMAT_", "CATALOG_FORMAT_"
GAP_POLICIES = {
    data_pb2.GAP_POLICY_UNSPECIFIED: "zeros",
    data_pb2.GAP_POLICY_DROP: "drop",
    data_pb2.GAP_POLICY_FILL_ZERO: "zeros",
    data_pb2.GAP_POLICY_INTERPOLATE: "interpolate",
}
NORMALIZATIONS = {
    data_pb2.NORMALIZATION_UNSPECIFIED: "none",
    data_pb2.NORMALIZATION_NONE: "none",
    data_pb2.NORMALIZATION_STD: "std",
    data_pb2.NORMALIZATION_PEAK: "peak",
}
DTYPES = {data_pb2.SAMPLE_DTYPE_UNSPECIFIED: "float32", data_pb2.SAMPLE_DTYPE_FLOAT32: "float32",
          data_pb2.SAMPLE_DTYPE_FLOAT16: "float16"}


@dataclass
class Parameters:
    """Everything of a request except its sources, as the library wants it."""

    window: WindowSpec
    preprocess: PreprocessSpec
    filters: FilterSpec
    split: SplitSpec
    shard_size: int
    dtype: str
    seed: int
    normalization: str
    location_clusters: int
    noise_windows_per_event: int | None
    noise_margin_s: float
    description: str

    def spec_kwargs(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _noise_margin(window: data_pb2.WindowSpec) -> float:
    if not window.HasField("noise_margin_s"):
        return DEFAULT_NOISE_MARGIN_S
    margin = _finite(window.noise_margin_s, "window.noise_margin_s")
    if margin < 0:
        raise InvalidArgument(f"window.noise_margin_s must be >= 0, got {margin:g}")
    return margin


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise InvalidArgument(f"{what} must be a finite number, got {value}")
    return value


def _window(w: data_pb2.WindowSpec) -> WindowSpec:
    length = _finite(w.length_s, "window.length_s")
    rate = _finite(w.sampling_rate_hz, "window.sampling_rate_hz")
    if length < 0:
        raise InvalidArgument(f"window.length_s must be > 0, got {length:g}")
    if rate < 0:
        raise InvalidArgument(f"window.sampling_rate_hz must be > 0, got {rate:g}")
    lo, hi = _finite(w.p_offset_min_s, "window.p_offset_min_s"), _finite(w.p_offset_max_s, "window.p_offset_max_s")
    fixed = _finite(w.p_offset_s, "window.p_offset_s")
    if fixed < 0:
        raise InvalidArgument(f"window.p_offset_s must be >= 0, got {fixed:g}")
    window = length or 60.0
    if (lo, hi) != (0.0, 0.0):  # a range was asked for: refuse it rather than silently dropping it
        if lo < 0 or hi <= lo:
            raise InvalidArgument(f"window.p_offset_min_s must be >= 0 and below window.p_offset_max_s, got "
                                  f"{lo:g},{hi:g} (min,max)")
        if hi > window:
            raise InvalidArgument(f"window.p_offset_max_s {hi:g} lies beyond the {window:g} s window")
    if fixed > window:
        raise InvalidArgument(f"window.p_offset_s {fixed:g} lies beyond the {window:g} s window")
    # p_offset_s 0 = unset: STEAD/SeisBench keep their traces' alignment, catalog windows put P at 5 s.
    return WindowSpec(
        length_s=window,
        sampling_rate=rate or 100.0,
        p_offset_s=None if (hi > lo or fixed == 0) else fixed,
        p_offset_range_s=(lo, hi) if hi > lo else None,
        include_noise=w.include_noise,
    )


def _preprocess(p: data_pb2.Preprocessing) -> PreprocessSpec:
    return PreprocessSpec(
        detrend="linear" if p.detrend else None,
        taper_fraction=_finite(p.taper_fraction, "preprocessing.taper_fraction"),
        freqmin=_finite(p.freqmin_hz, "preprocessing.freqmin_hz") or None,
        freqmax=_finite(p.freqmax_hz, "preprocessing.freqmax_hz") or None,
        resample=True,  # the contract: traces are resampled to the window's rate
        component_order=p.component_order or "ZNE",
        gap_policy=GAP_POLICIES.get(p.gap_policy, "zeros"),
        max_upsampling=_finite(p.max_upsampling, "preprocessing.max_upsampling") or DEFAULT_MAX_UPSAMPLING,
    )


def _filters(f: data_pb2.Filters) -> FilterSpec:
    def opt(name: str) -> float | None:
        return _finite(getattr(f, name), f"filters.{name}") if f.HasField(name) else None

    if f.max_count < 0:
        raise InvalidArgument(f"filters.max_count must be >= 0, got {f.max_count}")
    return FilterSpec(
        magnitude_types=[t.strip().lower() for t in f.magnitude_types if t.strip()] or None,
        min_magnitude=opt("min_magnitude"),
        max_magnitude=opt("max_magnitude"),
        min_snr_db=opt("min_snr_db"),
        min_distance_km=opt("min_distance_km"),
        max_distance_km=opt("max_distance_km"),
        max_items=f.max_count or None,
    )


def _split(s: data_pb2.SplitSpec) -> SplitSpec:
    ratios = (s.train, s.val, s.test)
    by = "time" if s.strategy == data_pb2.SPLIT_STRATEGY_BY_TIME else "event"
    if ratios == (0.0, 0.0, 0.0):
        return SplitSpec(by=by)
    return SplitSpec(*(_finite(r, "split ratio") for r in ratios), by=by)


def parameters(request: data_pb2.CreateDatasetRequest) -> Parameters:
    """Validate and translate everything but the sources; InvalidArgument with the precise reason."""
    validate_name(request.name, "dataset name")
    if request.shard_size < 0:
        raise InvalidArgument(f"shard_size must be > 0, got {request.shard_size}")
    if request.dtype not in DTYPES:
        raise InvalidArgument(enum_value_text(data_pb2.SampleDtype, request.dtype, "dtype"))
    if request.preprocessing.normalization not in NORMALIZATIONS:
        raise InvalidArgument(enum_value_text(data_pb2.Normalization, request.preprocessing.normalization,
                                              "preprocessing.normalization"))
    if request.window.location_clusters < 0 or request.window.noise_windows_per_event < 0:
        raise InvalidArgument("window.location_clusters and window.noise_windows_per_event must be >= 0")
    try:
        return Parameters(
            window=_window(request.window),
            preprocess=_preprocess(request.preprocessing),
            filters=_filters(request.filters),
            split=_split(request.split),
            shard_size=request.shard_size or DEFAULT_SHARD_SIZE,
            dtype=DTYPES[request.dtype],
            seed=request.seed,
            normalization=NORMALIZATIONS[request.preprocessing.normalization],
            location_clusters=request.window.location_clusters,
            noise_windows_per_event=request.window.noise_windows_per_event or 1,
            noise_margin_s=_noise_margin(request.window),
            description=request.description,
        )
    except InvalidArgument:
        raise
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


def _enum_name(enum_type: object, prefix: str, number: int) -> str | None:
    """SOURCE_FORMAT_STEAD -> "stead": the contract's enum values name registered formats; 0 / unknown -> None."""
    value = enum_type.DESCRIPTOR.values_by_number.get(number)  # type: ignore[attr-defined]
    return value.name[len(prefix):].lower() if value is not None and number else None


def _enum_number(enum_type: object, prefix: str, name: str) -> int:
    """ "stead" -> SOURCE_FORMAT_STEAD's number; 0 for a format the contract has no enum value for."""
    value = enum_type.DESCRIPTOR.values_by_name.get(prefix + name.upper())  # type: ignore[attr-defined]
    return value.number if value is not None else 0


def source_format_value(name: str) -> int:
    """The SourceFormat number of a registered reader (0: none, send DataSource.format_name)."""
    return _enum_number(data_pb2.SourceFormat, SOURCE_PREFIX, name)


def catalog_format_value(name: str) -> int:
    return _enum_number(data_pb2.CatalogFormat, CATALOG_PREFIX, name)


def catalog_format_name(source: data_pb2.DataSource) -> str | None:
    return _enum_name(data_pb2.CatalogFormat, CATALOG_PREFIX, source.catalog_format)


def source_format(source: data_pb2.DataSource, index: int) -> str:
    """The registered reader a source names; INVALID_ARGUMENT for unknown or missing parts."""
    known = readers.names()
    by_enum = _enum_name(data_pb2.SourceFormat, SOURCE_PREFIX, source.format)
    if source.format_name:
        fmt = source.format_name
        if fmt not in known:
            raise InvalidArgument(f"sources[{index}].format_name {fmt!r} is not a registered source format; "
                                  f"registered: {', '.join(known)}")
        if source.format and by_enum != fmt:
            raise InvalidArgument(f"sources[{index}]: format and format_name name different formats "
                                  f"({by_enum or source.format} and {fmt})")
    elif by_enum in known:
        fmt = by_enum  # type: ignore[assignment]
    else:
        raise InvalidArgument(enum_value_text(data_pb2.SourceFormat, source.format, f"sources[{index}].format")
                              + f" (or set sources[{index}].format_name: {', '.join(known)})")
    if source.waveforms.WhichOneof("location") is None:
        raise InvalidArgument(f"sources[{index}]: waveforms location (object_key or local_path) is required")
    reader = readers.get_reader(fmt)
    if reader.needs_catalog and source.catalog.WhichOneof("location") is None:
        raise InvalidArgument(f"sources[{index}]: a {fmt} source needs a catalog location")
    if reader.catalog_formats and source.catalog.WhichOneof("location") is not None \
            and catalog_format_name(source) not in reader.catalog_formats:
        raise InvalidArgument(enum_value_text(data_pb2.CatalogFormat, source.catalog_format,
                                              f"sources[{index}].catalog_format"))
    return fmt


def dataset_job_spec(request: data_pb2.CreateDatasetRequest, store: ObjectStore, settings: Settings) -> dict[str, Any]:
    """The dataset job's spec: parameters validated and every source resolved (NOT_FOUND, PERMISSION_DENIED,
    INVALID_ARGUMENT now, before a job exists); the worker takes it as-is."""
    params = parameters(request)
    if not request.sources:
        raise InvalidArgument("a dataset needs at least one source")
    sources = []
    for i, source in enumerate(request.sources):
        entry: dict[str, Any] = {"format": source_format(source, i), "catalog_format": catalog_format_name(source),
                                 "catalog": None}
        entry["waveforms"] = check_location(store, source.waveforms, f"sources[{i}].waveforms",
                                            settings.data_allowed_dirs).to_dict()
        if source.catalog.WhichOneof("location"):
            entry["catalog"] = check_location(store, source.catalog, f"sources[{i}].catalog",
                                              settings.data_allowed_dirs).to_dict()
        sources.append(entry)
    return build_spec(dataset=request.name, parameters=params.spec_kwargs(), sources=sources, workers=request.workers)
