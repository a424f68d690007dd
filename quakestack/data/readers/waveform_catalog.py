"""Continuous waveform files (anything ``obspy.read`` reads: miniSEED, SAC, SEISAN...) + a pick catalog.

Catalogs: QuakeML or Nordic S-files (``obspy.read_events``) or a CSV with one row per pick
(required ``seed_id, phase, time``; optional ``event_id, origin_time, magnitude, magnitude_type,
latitude, longitude, depth_km, distance_km``).

A pick selects the stream NET.STA.LOC + the channel code without its component letter (a P pick on HHZ
selects HHZ/HHN/HHE; GSE2's one-letter `Z` is a stream of its own); missing network/location in the pick
(old Nordic files) match any, a two-letter Nordic channel ("HZ") matches on the band code and a
one-letter pick channel on the component only. Items are cut around the P pick (``pre_s`` before,
``post_s`` after) so that later preprocessing has margin for filter edges; noise items are pick-free
stretches at least ``noise_margin_s`` away from every pick and origin time of the catalog (any station).
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import obspy
from obspy import Stream, UTCDateTime

from quakestack.errors import InvalidArgument

from ..records import (
    NO_NOISE_REASON,
    NOISE_CATEGORY,
    DataSourceError,
    ItemRef,
    Skipped,
    TraceRecord,
    clean_float,
    clean_str,
    parse_time,
)
from ..spec import ListOptions, SourceSpec
from .base import Located, NotThisFormat, Reader, UploadGroup, expand_inputs

NAME = "waveform_catalog"
CATALOG_FORMATS = ("quakeml", "nordic", "csv")
DEFAULT_P_OFFSET_S = 5.0  # where P sits in an event window when the request leaves it open
WAVEFORM_SUFFIXES = (".mseed", ".miniseed", ".ms", ".sac", ".seed")
NOT_WAVEFORMS = (".csv", ".xml", ".qml", ".quakeml", ".json", ".txt", ".md", ".nordic", ".log", ".sha256")
CSV_REQUIRED = ("seed_id", "phase", "time")
KM_PER_DEG = 111.19492664455873


@dataclass
class CatalogPick:
    """One phase pick; ``seed_id`` is NET.STA.LOC.CHA, any part possibly empty."""

    seed_id: str
    phase: str
    time: UTCDateTime
    distance_km: float | None = None


@dataclass
class CatalogEvent:
    """An event with its picks; absent values are None."""

    event_id: str
    origin_time: UTCDateTime | None = None
    latitude: float | None = None
    longitude: float | None = None
    depth_km: float | None = None
    magnitude: float | None = None
    magnitude_type: str | None = None
    category: str = "earthquake"
    picks: list[CatalogPick] = field(default_factory=list)


# ----------------------------------------------------------------------------------------- catalogs
def read_catalog(path: str, fmt: str) -> list[CatalogEvent]:
    """Read a pick catalog ('quakeml' | 'nordic' | 'csv') into :class:`CatalogEvent` objects."""
    fmt = fmt.lower()
    if not os.path.isfile(path):
        raise DataSourceError(path, "catalog file not found")
    if fmt == "csv":
        return _read_csv_catalog(path)
    if fmt not in CATALOG_FORMATS:
        raise ValueError(f"unknown catalog format {fmt!r}; expected quakeml, nordic or csv")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cat = obspy.read_events(path, format="QUAKEML" if fmt == "quakeml" else "NORDIC")
    except Exception as exc:  # ObsPy raises many types for malformed files
        raise DataSourceError(path, f"cannot read {fmt} catalog: {type(exc).__name__}: {exc}") from None
    return [_from_obspy_event(ev) for ev in cat]


def _from_obspy_event(ev: obspy.core.event.Event) -> CatalogEvent:
    origin = ev.preferred_origin() or (ev.origins[0] if ev.origins else None)
    mag = ev.preferred_magnitude() or (ev.magnitudes[0] if ev.magnitudes else None)
    rid = str(ev.resource_id.id) if ev.resource_id else ""
    otime = origin.time if origin is not None else None
    if not rid or rid.startswith("smi:local/"):  # random ids (Nordic reader): use the origin time
        rid = otime.strftime("%Y%m%dT%H%M%S.%f") if otime is not None else rid
    dist_by_pick: dict[str, float] = {}
    if origin is not None:
        for arr in origin.arrivals:
            if arr.distance is not None and arr.pick_id is not None:
                dist_by_pick[str(arr.pick_id.id)] = float(arr.distance) * KM_PER_DEG
    picks = []
    for p in ev.picks:
        phase = p.phase_hint or ""
        if not phase and origin is not None:
            phase = next((a.phase for a in origin.arrivals if a.pick_id == p.resource_id and a.phase), "")
        wid = p.waveform_id
        seed = ".".join(x or "" for x in (wid.network_code, wid.station_code, wid.location_code, wid.channel_code))
        picks.append(CatalogPick(seed, phase, p.time, dist_by_pick.get(str(p.resource_id.id))))
    etype = str(ev.event_type or "earthquake")
    return CatalogEvent(
        event_id=rid,
        origin_time=otime,
        latitude=None if origin is None else origin.latitude,
        longitude=None if origin is None else origin.longitude,
        depth_km=None if origin is None or origin.depth is None else origin.depth / 1000.0,
        magnitude=None if mag is None else mag.mag,
        magnitude_type=None if mag is None or not mag.magnitude_type else mag.magnitude_type.lower(),
        category="explosion" if "explosion" in etype or "blast" in etype else "earthquake",
        picks=picks,
    )


def _read_csv_catalog(path: str) -> list[CatalogEvent]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in CSV_REQUIRED if c not in cols]
        if missing:
            raise DataSourceError(path, f"pick CSV is missing required columns: {', '.join(missing)}")
        events: dict[str, CatalogEvent] = {}
        for i, raw in enumerate(reader):
            row = {k.strip(): v for k, v in raw.items() if k is not None}
            t = parse_time(row.get("time"))
            if t is None:
                raise DataSourceError(path, f"row {i + 2}: unparseable pick time {row.get('time')!r}")
            otime = parse_time(row.get("origin_time"))
            eid = clean_str(row.get("event_id")) or (str(otime) if otime is not None else f"row{i + 2}")
            ev = events.get(eid)
            if ev is None:
                mtype = clean_str(row.get("magnitude_type"))
                ev = events[eid] = CatalogEvent(
                    event_id=eid,
                    origin_time=otime,
                    latitude=clean_float(row.get("latitude")),
                    longitude=clean_float(row.get("longitude")),
                    depth_km=clean_float(row.get("depth_km")),
                    magnitude=clean_float(row.get("magnitude")),
                    magnitude_type=mtype.lower() if mtype else None,
                )
            ev.picks.append(
                CatalogPick(
                    clean_str(row.get("seed_id")) or "",
                    clean_str(row.get("phase")) or "",
                    t,
                    clean_float(row.get("distance_km")),
                )
            )
    return list(events.values())


# ---------------------------------------------------------------------------------------- waveforms
@dataclass(frozen=True)
class Segment:
    """One trace of one file (headers only)."""

    path: str
    seed_id: str
    start: UTCDateTime
    end: UTCDateTime
    sampling_rate: float


def _check_mseed(path: str) -> None:
    """ObsPy silently drops a truncated last record; catch truncation from the record length instead."""
    from obspy.io.mseed.core import _is_mseed
    from obspy.io.mseed.util import get_record_information

    if not _is_mseed(path):
        return
    try:
        reclen = int(get_record_information(path)["record_length"])
    except Exception as exc:
        raise DataSourceError(path, f"corrupt miniSEED header: {type(exc).__name__}: {exc}") from None
    size = os.path.getsize(path)
    if reclen > 0 and size % reclen:
        raise DataSourceError(
            path, f"truncated miniSEED: file size {size} bytes is not a multiple of the record length {reclen}"
        )


def scan_waveforms(paths: Sequence[str]) -> dict[str, list[Segment]]:
    """Read headers only; group segments by stream key NET.STA.LOC.BI (the channel code less its component
    letter: band + instrument for SEED's three letters, "" for a one-letter code)."""
    groups: dict[str, list[Segment]] = {}
    for path in paths:
        if not os.path.isfile(path):
            raise DataSourceError(path, "waveform file not found")
        _check_mseed(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                st = obspy.read(path, headonly=True)
        except Exception as exc:  # obspy raises TypeError/ValueError/InternalMSEEDError...
            raise DataSourceError(path, f"cannot read waveform file: {type(exc).__name__}: {exc}") from None
        if len(st) == 0:
            raise DataSourceError(path, "waveform file holds no traces")
        for tr in st:
            s = tr.stats
            key = f"{s.network}.{s.station}.{s.location}.{s.channel[:-1]}"
            groups.setdefault(key, []).append(Segment(path, tr.id, s.starttime, s.endtime, float(s.sampling_rate)))
    return groups


def _matches(pick_seed: str, key: str) -> bool:
    parts = (pick_seed.split(".") + ["", "", "", ""])[:4]
    net, sta, loc, cha = parts
    knet, ksta, kloc, kbi = key.split(".")
    if sta != ksta or (net and net != knet) or (loc and loc != kloc):
        return False
    if len(cha) >= 3:
        return cha[:-1] == kbi
    if len(cha) == 2:
        return not kbi or cha[0] == kbi[0]
    return True  # a one-letter channel names the component only


AMPLITUDE_REASON = "amplitude pick, not a phase pick"
MAX_IDS_SHOWN = 8


def is_phase_pick(phase: str) -> bool:
    """P and S phases (P, Pg, Pn, PKP, S, Sg, Sn, ...); amplitude readings (IAML, A, AML, END) are not."""
    return phase[:1].upper() in ("P", "S") and not phase.upper().startswith(("PMAX", "SMAX"))


def held_ids(groups: dict[str, list[Segment]]) -> str:
    """The SEED ids the waveforms hold, with their time span: what an unmatched pick is compared with."""
    ids = sorted({seg.seed_id for segs in groups.values() for seg in segs})
    segs = [seg for g in groups.values() for seg in g]
    start, end = min(s.start for s in segs), max(s.end for s in segs)
    shown = ", ".join(ids[:MAX_IDS_SHOWN]) + (f" and {len(ids) - MAX_IDS_SHOWN} more" if len(ids) > MAX_IDS_SHOWN
                                              else "")
    return f"the waveforms hold {shown} from {start} to {end}"


def unmatched_detail(pick: CatalogPick, groups: dict[str, list[Segment]]) -> str:
    """Why a phase pick matched no waveform: the first part of NET.STA.LOC.CHA (or the time) that differs."""
    net, sta, loc, cha = (pick.seed_id.split(".") + ["", "", "", ""])[:4]
    keys = [k.split(".") for k in groups]
    if not any(k[1] == sta for k in keys):
        why = f"no waveform of station {sta!r}"
    elif net and not any(k[1] == sta and k[0] == net for k in keys):
        nets = sorted({k[0] for k in keys if k[1] == sta})
        why = f"network {net!r} differs from the waveforms' {', '.join(repr(n) for n in nets)}"
    elif loc and not any(k[1] == sta and (not net or k[0] == net) and k[2] == loc for k in keys):
        locs = sorted({k[2] for k in keys if k[1] == sta})
        why = f"location {loc!r} differs from the waveforms' {', '.join(repr(x) for x in locs)}"
    elif not any(_matches(pick.seed_id, ".".join(k)) for k in keys):
        why = f"channel {cha!r} matches none of the station's channels"
    else:
        why = "no waveform of that channel covers the pick time"
    return f"{why}; {held_ids(groups)}"


def _longest_span(segs: Sequence[Segment]) -> float:
    """Seconds of the longest gap-free stretch the stream covers (segments of several files joined)."""
    longest, start, end = 0.0, None, None
    for seg in sorted(segs, key=lambda s: s.start.ns):
        step = 1.5 / seg.sampling_rate if seg.sampling_rate > 0 else 0.0
        if start is None or seg.start - end > step:
            start, end = seg.start, seg.end
        else:
            end = max(end, seg.end)
        longest = max(longest, float(end - start))
    return longest


def _covers(segs: Sequence[Segment], t: UTCDateTime) -> bool:
    return any(s.start <= t <= s.end for s in segs)


def list_catalog_items(
    waveform_paths: Sequence[str],
    catalog_path: str,
    catalog_format: str,
    *,
    pre_s: float = 30.0,
    post_s: float = 60.0,
    noise_length_s: float | None = 60.0,
    noise_margin_s: float = 60.0,
    max_noise_per_stream: int | None = None,
    noise_per_event: int | None = None,
    window_s: float | None = None,
) -> list[ItemRef | Skipped]:
    """Event items (event x stream with a P pick) and noise items, from headers and the catalog only.

    ``noise_per_event`` caps each stream's noise items at that many per event item on the stream
    (at least one), keeping detection datasets balanced; ``max_noise_per_stream`` is an absolute cap.
    """
    groups = scan_waveforms(waveform_paths)
    events = read_catalog(catalog_path, catalog_format)
    cat_name = os.path.basename(catalog_path)
    out: list[ItemRef | Skipped] = []
    forbidden: list[float] = []
    for ev in events:
        forbidden.extend(float(p.time.timestamp) for p in ev.picks)
        if ev.origin_time is not None:
            forbidden.append(float(ev.origin_time.timestamp))
        per_key: dict[str, dict[str, CatalogPick]] = {}
        for pick in ev.picks:
            what = f"{ev.event_id} {pick.seed_id} {pick.phase or '(no phase)'} {pick.time}"
            if not is_phase_pick(pick.phase):
                # amplitude readings (IAML, A, AML, ...) and unnamed picks: told apart from phase picks
                out.append(Skipped(cat_name, what, AMPLITUDE_REASON if pick.phase else "pick without a phase name"))
                continue
            keys = [k for k in sorted(groups) if _matches(pick.seed_id, k) and _covers(groups[k], pick.time)]
            if not keys:
                out.append(Skipped(cat_name, what, "pick matches no waveform", unmatched_detail(pick, groups)))
                continue
            kind = pick.phase[:1].upper()
            slot = per_key.setdefault(keys[0], {})
            if kind not in slot or pick.time < slot[kind].time:
                slot[kind] = pick
        for key, slot in sorted(per_key.items()):
            if "P" not in slot:
                out.append(Skipped(cat_name, f"{ev.event_id} {key}", "S pick without a P pick"))
                continue
            span = _longest_span(groups[key])
            if window_s is not None and window_s > span:
                # the window cannot fit the data anywhere: an error (counted), never a zero-padded window
                out.append(Skipped(cat_name, f"{ev.event_id} {key}", "window longer than trace",
                                   f"{window_s:g} s window, the longest record of {key} holds {span:.1f} s"))
                continue
            out.append(_event_item(ev, key, groups[key], slot["P"], slot.get("S"), pre_s, post_s))
    if noise_length_s:
        forb = np.sort(np.asarray(forbidden, dtype=float))
        events_on: Counter[str] = Counter(x.locator["stream"] for x in out if isinstance(x, ItemRef))
        noise = []
        for key in sorted(groups):
            cap = max_noise_per_stream
            if noise_per_event is not None:
                per_event = noise_per_event * max(1, events_on[key])
                cap = per_event if cap is None else min(cap, per_event)
            noise += _noise_items(key, groups[key], forb, noise_length_s, noise_margin_s, cap)
        if not noise:  # said once, with what would give some, rather than a dataset that lacks noise unexplained
            longest = max(_longest_span(segs) for segs in groups.values())
            out.append(Skipped(cat_name, "noise windows", NO_NOISE_REASON,
                               f"a noise window needs {noise_length_s:g} s at least {noise_margin_s:g} s (the noise "
                               f"margin) from every pick and origin time; the longest record holds {longest:.1f} s: "
                               "lower the noise margin (--noise-margin-s) or give longer records"))
        out.extend(noise)
    return out


def _event_item(
    ev: CatalogEvent,
    key: str,
    segs: list[Segment],
    p: CatalogPick,
    s: CatalogPick | None,
    pre_s: float,
    post_s: float,
) -> ItemRef:
    rate = segs[0].sampling_rate
    start = p.time - pre_s
    end = p.time + post_s
    net, sta, loc, bi = key.split(".")
    dist = p.distance_km
    return ItemRef(
        reader=NAME,
        source=segs[0].path,
        locator=_locator(key, segs, start, end),
        trace_name=f"{ev.event_id}|{key}",
        station=f"{net}.{sta}.{loc}",
        category=ev.category,
        sampling_rate=rate,
        start_time=start,
        event_id=ev.event_id,
        p_arrival_sample=(p.time - start) * rate,
        s_arrival_sample=None if s is None else (s.time - start) * rate,
        p_travel_s=None if ev.origin_time is None else p.time - ev.origin_time,
        magnitude=ev.magnitude,
        magnitude_type=ev.magnitude_type,
        distance_km=dist,
        depth_km=ev.depth_km,
        source_latitude=ev.latitude,
        source_longitude=ev.longitude,
        origin_time=ev.origin_time,
        extra={"p_time": str(p.time), "s_time": None if s is None else str(s.time)},
    )


def _locator(key: str, segs: Sequence[Segment], start: UTCDateTime, end: UTCDateTime) -> dict:
    files = sorted({s.path for s in segs if s.end >= start and s.start <= end}) or [segs[0].path]
    return {"stream": key, "files": files, "start": str(start), "end": str(end)}


def _noise_items(
    key: str,
    segs: list[Segment],
    forbidden: np.ndarray,
    length: float,
    margin: float,
    max_items: int | None,
) -> list[ItemRef]:
    out: list[ItemRef] = []
    net, sta, loc, bi = key.split(".")
    rate = segs[0].sampling_rate
    spans = sorted({(s.start.ns, s.end.ns) for s in segs})
    for ns0, ns1 in spans:
        t0, t1 = UTCDateTime(ns=ns0), UTCDateTime(ns=ns1)
        n = int(math.floor((t1 - t0) / length))
        for k in range(n):
            start = t0 + k * length
            lo, hi = float(start.timestamp) - margin, float(start.timestamp) + length + margin
            i = int(np.searchsorted(forbidden, lo))
            if i < len(forbidden) and forbidden[i] <= hi:
                continue
            end = start + length
            out.append(
                ItemRef(
                    reader=NAME,
                    source=segs[0].path,
                    locator=_locator(key, segs, start, end),
                    trace_name=f"noise|{key}|{start.strftime('%Y%m%dT%H%M%S.%f')}",
                    station=f"{net}.{sta}.{loc}",
                    category=NOISE_CATEGORY,
                    sampling_rate=rate,
                    start_time=start,
                )
            )
    if max_items is not None and len(out) > max_items:
        idx = np.linspace(0, len(out) - 1, max_items).round().astype(int)
        out = [out[i] for i in sorted(set(idx.tolist()))]
    return out


# -------------------------------------------------------------------------------------------- loading
def _read_span(path: str, start: UTCDateTime, end: UTCDateTime) -> Stream:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return obspy.read(path, starttime=start, endtime=end)
        except TypeError:  # formats without time-window support at read
            return obspy.read(path).trim(start, end)


def load_many(items: Sequence[ItemRef]) -> list[TraceRecord | Skipped]:
    """Load items in order; each file is read once for the time span all its items need."""
    spans: dict[str, tuple[UTCDateTime, UTCDateTime]] = {}
    for it in items:
        s, e = UTCDateTime(it.locator["start"]), UTCDateTime(it.locator["end"])
        for f in it.locator["files"]:
            a, b = spans.get(f, (s, e))
            spans[f] = (min(a, s), max(b, e))
    streams: dict[str, Stream | str] = {}
    for f, (a, b) in spans.items():
        try:
            streams[f] = _read_span(f, a - 1.0, b + 1.0)
        except Exception as exc:  # a file that went bad after planning: its items are skipped
            streams[f] = f"{type(exc).__name__}: {exc}"
    return [_load_one(it, streams) for it in items]


def load(item: ItemRef) -> TraceRecord | Skipped:
    """Load one item (prefer :func:`load_many` for many)."""
    return load_many([item])[0]


def _load_one(item: ItemRef, streams: dict[str, Stream | str]) -> TraceRecord | Skipped:
    src = os.path.basename(item.source)
    key = item.locator["stream"]
    net, sta, loc, bi = key.split(".")
    st = Stream()
    for f in item.locator["files"]:
        got = streams[f]
        if isinstance(got, str):
            return Skipped(os.path.basename(f), item.trace_name, "cannot read waveform file", got)
        st += got.select(network=net, station=sta, location=loc, channel=f"{bi}?")
    if len(st) == 0:
        return Skipped(src, item.trace_name, "no data in the item's time span", key)
    rates = sorted({float(tr.stats.sampling_rate) for tr in st})
    if len(rates) > 1:
        return Skipped(src, item.trace_name, "channels have different sampling rates", f"{key}: {rates} Hz")
    rate = rates[0]
    start, end = UTCDateTime(item.locator["start"]), UTCDateTime(item.locator["end"])
    st = st.copy()
    try:
        st.merge(method=1, fill_value=None)
    except Exception as exc:
        return Skipped(src, item.trace_name, "cannot merge segments", str(exc))
    st.trim(start, end, pad=True, fill_value=None, nearest_sample=True)
    npts = int(round((end - start) * rate))
    chans = sorted(st, key=lambda tr: "ZNE123".find(tr.stats.channel[-1]) % 7)
    comp = "".join(tr.stats.channel[-1] for tr in chans)
    if len(set(comp)) != len(comp):
        return Skipped(src, item.trace_name, "duplicate channels after merge", comp)
    t0 = chans[0].stats.starttime
    data = np.full((len(chans), npts), np.nan, dtype=np.float32)
    for c, tr in enumerate(chans):
        off = int(round((tr.stats.starttime - t0) * rate))
        x = np.ma.filled(np.ma.masked_invalid(np.ma.asarray(tr.data, dtype=np.float64)), np.nan)
        x = x[max(0, -off) : max(0, -off) + npts - max(off, 0)]
        data[c, max(off, 0) : max(off, 0) + len(x)] = x
    n_gap = int(np.isnan(data).sum())
    if n_gap == data.size:
        return Skipped(src, item.trace_name, "no data in the item's time span", key)
    if np.isinf(data).any():
        return Skipped(src, item.trace_name, "non-finite samples (NaN/inf)", f"{int(np.isinf(data).sum())} inf")
    if not np.any(np.nan_to_num(data)):
        return Skipped(src, item.trace_name, "all-zero trace")
    meta = item.label_fields()
    shift = (t0 - start) * rate  # labels were computed relative to the requested start
    for lab in ("p_arrival_sample", "s_arrival_sample"):
        if meta[lab] is not None:
            meta[lab] = meta[lab] - shift
    meta["start_time"] = t0
    meta["sampling_rate"] = rate
    meta["extra"] = {**meta["extra"], "gap_samples": n_gap}
    return TraceRecord(data=data, component_order=comp, **meta)


# ------------------------------------------------------------------------------------------- the reader
def waveform_span(path: Path) -> tuple[float, list[str]] | None:
    """(longest trace duration in s, SEED ids) from the headers of a waveform file; None if ObsPy cannot read it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stream = obspy.read(str(path), headonly=True)
    except Exception:  # noqa: BLE001 - ObsPy raises many types for files it does not read
        return None
    if not len(stream):
        return None
    return max(tr.stats.endtime - tr.stats.starttime for tr in stream), sorted({tr.id for tr in stream})


class WaveformCatalogReader(Reader):
    """Waveform files ObsPy reads plus one pick catalog; event windows put P at 5 s unless asked otherwise."""

    name = NAME
    cli_name = "mseed"
    summary = "any ObsPy waveform file"
    file_kind = "a waveform file ObsPy can read"
    needs_catalog = True
    catalog_formats = CATALOG_FORMATS
    default_p_offset_s = DEFAULT_P_OFFSET_S
    minor_reasons = (AMPLITUDE_REASON,)  # unmatched phase picks are what users look for first

    def list_items(self, source: SourceSpec, options: ListOptions) -> list[ItemRef | Skipped]:
        w = options.window
        lo, hi = w.offset_bounds_s(self.default_p_offset_s)  # type: ignore[misc]
        return list_catalog_items(
            source.paths,
            source.catalog_path,  # type: ignore[arg-type]
            source.catalog_format,
            pre_s=hi + options.edge_pad_s,
            post_s=w.length_s - lo + options.edge_pad_s,
            noise_length_s=(w.length_s + 2 * options.edge_pad_s) if w.include_noise else None,
            noise_margin_s=options.noise_margin_s,
            max_noise_per_stream=options.max_noise_per_stream,
            noise_per_event=options.noise_windows_per_event,
            window_s=w.length_s,
        )

    def load_many(self, items: Sequence[ItemRef]) -> list[TraceRecord | Skipped]:
        return load_many(items)

    def resolve(self, waveforms: Located, catalog: Located | None, catalog_format: str | None,
                name: str) -> SourceSpec:
        cat = self.one_catalog(catalog, name)
        wave = list(waveforms.files)
        if waveforms.is_dir:  # a folder may hold the catalog and notes beside the waveforms
            taken = catalog.files if catalog else []
            wave = [p for p in wave if p not in taken and not p.lower().endswith(NOT_WAVEFORMS)]
        if not wave:
            raise InvalidArgument(f"{name}: no waveform files in {waveforms.display}")
        return SourceSpec(NAME, wave, catalog_path=cat, catalog_format=catalog_format or "", name=name)

    def sniff(self, path: Path) -> int:
        if path.is_dir():
            return 2 if any(f.name.lower().endswith(WAVEFORM_SUFFIXES) for f in path.iterdir()) else 0
        if path.suffix.lower() in WAVEFORM_SUFFIXES:
            return 2
        return 1 if waveform_span(path) is not None else 0

    def guess_catalog_format(self, path: str) -> str | None:
        """.xml/.qml/.quakeml: QuakeML, .csv: CSV, anything else: a Nordic S-file."""
        lowered = path.lower()
        if lowered.endswith((".xml", ".qml", ".quakeml")):
            return "quakeml"
        return "csv" if lowered.endswith(".csv") else "nordic"

    def _waveform_inputs(self, inputs: Sequence[str], catalog: str | None) -> list[Path]:
        waves = [f for f in expand_inputs(inputs, WAVEFORM_SUFFIXES) if str(f) != catalog]
        if not waves:
            raise InvalidArgument("no waveform files among the inputs (.mseed, .sac, SEISAN ...)")
        return waves

    def check_inputs(self, inputs: Sequence[str], catalog: str | None, window_s: float) -> None:
        """Every input is a waveform file ObsPy reads, and a window fits the longest record."""
        spans = []
        for f in self._waveform_inputs(inputs, catalog):
            span = waveform_span(f)
            if span is None:
                raise NotThisFormat(f, f"{f}: ObsPy cannot read this waveform file")
            spans.append(span[0])
        if window_s > max(spans):
            raise InvalidArgument(f"--window-s {window_s:g} is longer than the longest record ({max(spans):.1f} s); "
                                  "a window must fit inside the data")

    def upload_groups(self, inputs: Sequence[str], catalog: str | None) -> list[UploadGroup]:
        """The waveform files side by side in one upload (one source with its catalog), each under its name."""
        return [UploadGroup(self._waveform_inputs(inputs, catalog), Path(catalog) if catalog else None)]


READER = WaveformCatalogReader()
