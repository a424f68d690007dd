"""Physically plausible synthetic seismograms, written as REAL files that go through the real readers.

Model (deliberately simple, but with the relations a magnitude model must learn):
- P and S arrive at hypocentral distance r over vp = 6.0 and vs = 3.5 km/s;
- the peak S amplitude follows Hutton & Boore (1987), log10 A[mm] = ML - 1.11 log10 r - 0.00189 r - 0.591
  (written in nanometres, i.e. "counts"), P is ~1/3 of it, mostly on Z; S mostly horizontal;
- band-limited random carriers with an exponential coda whose duration grows with magnitude;
- coloured noise (microseism + high-frequency background) whose level depends on the station.
The P onset is sharp: the signal is exactly zero before the P sample, so tests can check alignment.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

import h5py
import numpy as np
from obspy import Stream, Trace, UTCDateTime
from obspy.core.event import (
    Arrival,
    Catalog,
    Event,
    Magnitude,
    Origin,
    Pick,
    ResourceIdentifier,
    WaveformStreamID,
)
from scipy import signal

from .records import clean_float, clean_str, parse_time

VP_KM_S = 6.0
VS_KM_S = 3.5
STEAD_RATE = 100.0
STEAD_SAMPLES = 6000
NM_PER_MM = 1.0e6
BASE_NOISE_NM = 300.0

STEAD_COLUMNS = [
    "network_code",
    "receiver_code",
    "receiver_type",
    "receiver_latitude",
    "receiver_longitude",
    "receiver_elevation_m",
    "p_arrival_sample",
    "p_status",
    "p_weight",
    "p_travel_sec",
    "s_arrival_sample",
    "s_status",
    "s_weight",
    "source_id",
    "source_origin_time",
    "source_origin_uncertainty_sec",
    "source_latitude",
    "source_longitude",
    "source_error_sec",
    "source_gap_deg",
    "source_horizontal_uncertainty_km",
    "source_depth_km",
    "source_depth_uncertainty_km",
    "source_magnitude",
    "source_magnitude_type",
    "source_magnitude_author",
    "source_mechanism_strike_dip_rake",
    "source_distance_deg",
    "source_distance_km",
    "back_azimuth_deg",
    "snr_db",
    "coda_end_sample",
    "trace_start_time",
    "trace_category",
    "trace_name",
]

# The label fields also stored as HDF5 attributes (the CSV stays the full record; each attribute
# costs ~60 us to write, so all 34 columns would dominate the writer's run time).
STEAD_ATTRS = (
    "network_code",
    "receiver_code",
    "receiver_type",
    "p_arrival_sample",
    "s_arrival_sample",
    "source_magnitude",
    "source_magnitude_type",
    "source_distance_km",
    "back_azimuth_deg",
    "snr_db",
    "coda_end_sample",
    "trace_start_time",
    "trace_category",
)

# (network, station, location, latitude, longitude)
DEFAULT_STATIONS: tuple[tuple[str, str, str, float, float], ...] = (
    ("XS", "ALFA", "00", 35.00, -117.00),
    ("XS", "BRAV", "00", 35.40, -116.60),
    ("XS", "CHAR", "00", 34.70, -116.50),
)


def hutton_boore_amplitude_nm(ml: float | np.ndarray, r_km: float | np.ndarray) -> np.ndarray:
    """Peak Wood-Anderson amplitude (nm) for local magnitude ``ml`` at hypocentral distance ``r_km``."""
    r = np.maximum(np.asarray(r_km, dtype=float), 1.0)
    log_a_mm = np.asarray(ml, dtype=float) - 1.11 * np.log10(r) - 0.00189 * r - 0.591
    return 10.0**log_a_mm * NM_PER_MM


def station_noise_level(station: str) -> float:
    """A stable, station-dependent noise level (0.5x to 2x the base) derived from the station name."""
    h = int.from_bytes(hashlib.sha256(station.encode()).digest()[:4], "little") / 2**32
    return BASE_NOISE_NM * 2.0 ** (2.0 * h - 1.0)


@dataclass
class SignalParams:
    """What one synthetic record contains; sample indices relative to the record's first sample."""

    p_sample: float | None
    s_sample: float | None
    magnitude: float
    r_km: float
    back_azimuth: float
    noise_level: float


_SOS_CACHE: dict[tuple, np.ndarray] = {}


def _sos(kind: str, freqs: tuple[float, ...], rate: float) -> np.ndarray:
    key = (kind, freqs, rate)
    if key not in _SOS_CACHE:
        # float32 sections keep sosfilt in float32 (half the memory traffic of float64)
        _SOS_CACHE[key] = signal.butter(2, freqs, btype=kind, fs=rate, output="sos").astype(np.float32)
    return _SOS_CACHE[key]


def coloured_noise(rng: np.random.Generator, shape: tuple[int, ...], rate: float) -> np.ndarray:
    """Unit-scale seismic-like noise: a strong microseism band (0.1-0.5 Hz) plus a 1-20 Hz background."""
    white = rng.standard_normal(shape, dtype=np.float32)
    micro = signal.sosfilt(_sos("bandpass", (0.1, 0.5), rate), white, axis=-1)
    high = signal.sosfilt(_sos("bandpass", (1.0, min(20.0, 0.4 * rate)), rate), white[..., ::-1], axis=-1)
    out = 2.0 * micro / (micro.std() + 1e-12) + high / (high.std() + 1e-12)
    return out / 3.0


def _signals(rng: np.random.Generator, params: Sequence[SignalParams], n_samples: int, rate: float) -> np.ndarray:
    """Earthquake signals alone for many records at once, (N, 3, n) ZNE, exactly zero before P.

    Vectorised over records: carriers are two band-limited noises (0.5-4 Hz and 2-15 Hz) mixed by
    magnitude (bigger events are richer in low frequencies); envelopes are sharp-onset exponentials.
    """
    n = len(params)
    t = (np.arange(n_samples, dtype=np.float32) / np.float32(rate))[None, :]
    has = np.array([p.p_sample is not None for p in params])
    mag = np.array([max(p.magnitude, 0.0) for p in params])[:, None]
    r = np.array([p.r_km for p in params])[:, None]
    tp = np.array([(p.p_sample or 0.0) / rate for p in params])[:, None]
    ts = np.array(
        [
            (p.s_sample / rate)
            if p.s_sample is not None
            else (p.p_sample or 0.0) / rate + p.r_km * (1 / VS_KM_S - 1 / VP_KM_S)
            for p in params
        ],
        dtype=np.float32,
    )[:, None]
    tp = tp.astype(np.float32)
    mag, r = mag.astype(np.float32), r.astype(np.float32)
    a_s = (hutton_boore_amplitude_nm(mag, r) * has[:, None]).astype(np.float32)
    a_p = a_s / 3.0
    tau = 1.0 + 1.5 * mag + r / 50.0  # coda decay time grows with size and distance
    shape = (n, 6, n_samples)
    white = rng.standard_normal(shape, dtype=np.float32)
    low = signal.sosfilt(_sos("bandpass", (0.5, 4.0), rate), white, axis=-1)
    high = signal.sosfilt(_sos("bandpass", (2.0, min(15.0, 0.4 * rate)), rate), white[..., ::-1], axis=-1)
    w = np.clip((mag - 1.0) / 4.0, 0.0, 1.0)[:, :, None]
    carrier = w * low / (low.std() + 1e-12) + (1 - w) * high / (high.std() + 1e-12)
    carrier /= 3.0  # peak ~ 1
    dtp = np.maximum(t - tp, 0.0)
    dts = np.maximum(t - ts, 0.0)
    after_p = t >= tp
    after_s = t >= ts
    env_p = after_p * (0.8 * np.exp(-dtp / (0.5 * tau)) + 0.2) * np.exp(-dts / tau)
    env_s = after_s * np.exp(-dts / tau)
    baz = np.radians([p.back_azimuth for p in params])
    p_pol = np.stack([np.ones(n), 0.35 * np.cos(baz), 0.35 * np.sin(baz)], axis=1)[:, :, None]
    s_pol = np.stack([0.3 * np.ones(n), np.sin(baz), np.cos(baz)], axis=1)[:, :, None]
    out = (
        a_p[:, :, None] * p_pol * env_p[:, None, :] * carrier[:, :3]
        + a_s[:, :, None] * s_pol * env_s[:, None, :] * carrier[:, 3:]
    )
    # A first-motion kick at the P sample itself makes the onset sharp and testable.
    onset = np.minimum(np.ceil(tp[:, 0] * rate - 1e-6).astype(int), n_samples - 1)
    rows = np.nonzero(has)[0]
    out[rows, :, onset[rows]] += 0.5 * a_p[rows] * p_pol[rows, :, 0]
    return out


def event_signal(rng: np.random.Generator, p: SignalParams, n_samples: int, rate: float) -> np.ndarray:
    """The (3, n) ZNE earthquake signal alone (zero before the P sample)."""
    return _signals(rng, [p], n_samples, rate)[0]


def synthesize(rng: np.random.Generator, params: Sequence[SignalParams], n_samples: int, rate: float) -> np.ndarray:
    """Noise + signal for many records at once: float32 (N, 3, n_samples), ZNE."""
    if not params:
        return np.empty((0, 3, n_samples), dtype=np.float32)
    levels = np.array([p.noise_level for p in params], dtype=np.float32)[:, None, None]
    x = coloured_noise(rng, (len(params), 3, n_samples), rate) * levels
    ev = [i for i, p in enumerate(params) if p.p_sample is not None]
    if ev:
        x[ev] += _signals(rng, [params[i] for i in ev], n_samples, rate)
    return x.astype(np.float32, copy=False)


def _snr_db(x: np.ndarray, p: float | None) -> list[float]:
    if p is None:
        return []
    k = int(p)
    pre = x[:, max(0, k - 500) : k]
    post = x[:, k : k + 500]
    if pre.shape[1] < 10 or post.shape[1] < 10:
        return [float("nan")] * 3
    ratio = post.std(axis=1) / (pre.std(axis=1) + 1e-12)
    return (20 * np.log10(ratio + 1e-12)).astype(float).tolist()


def _stead_list(values: Sequence[float]) -> str:
    """STEAD's numpy-1.13 text rendering of per-component lists: '[ 56.79999924  55.40000153  47.4 ]'."""
    return np.array2string(np.asarray(values, dtype=np.float64), legacy="1.13")


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> tuple[float, float]:
    """Epicentral distance (km) and back azimuth (deg, station to event) on a flat local projection."""
    dy = (lat2 - lat1) * 111.19
    dx = (lon2 - lon1) * 111.19 * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dx, dy), (math.degrees(math.atan2(dx, dy)) + 360.0) % 360.0


# ---------------------------------------------------------------------------------------------- STEAD
def _write_stead_h5(path: str, names: Sequence[str], arrays: np.ndarray, rows: Sequence[dict]) -> None:
    """Write STEAD HDF5: data/<trace_name> float32 (L, 3) in E, N, Z order, row fields as attributes."""
    with h5py.File(path, "w", libver=("earliest", "v110"), track_order=False) as f:
        g = f.create_group("data")
        for name, x, row in zip(names, arrays, rows, strict=True):
            d = g.create_dataset(name, data=np.ascontiguousarray(x[::-1].T), track_times=False)
            for k in STEAD_ATTRS:
                v = row.get(k, "")
                fv = clean_float(v) if k not in ("snr_db", "coda_end_sample") else None
                if k in ("snr_db", "coda_end_sample"):
                    vals = [float(t) for t in str(v).replace("[", " ").replace("]", " ").split()] if v else []
                    d.attrs[k] = np.asarray(vals, dtype=np.float64)
                elif fv is not None and k not in ("source_id", "network_code", "receiver_code"):
                    d.attrs[k] = fv
                else:
                    d.attrs[k] = str(v)


def _write_stead_csv(path: str, rows: Sequence[dict]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(STEAD_COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def _synthetic_stations(rng: np.random.Generator, n: int) -> list[tuple[str, str, float, float, float]]:
    nets = ["TA", "CI", "NC", "UW", "AK"]
    out = []
    for i in range(n):
        out.append(
            (
                nets[i % len(nets)],
                f"S{i:03d}",
                float(rng.uniform(33.0, 37.0)),
                float(rng.uniform(-120.0, -115.0)),
                float(rng.uniform(0, 1500)),
            )
        )
    return out


def write_stead(out_dir: str, n_events: int, n_noise: int, seed: int, chunks: int = 1, *,
                vp_km_s: float = VP_KM_S, vs_km_s: float = VS_KM_S,
                noise_scale: float = 1.0) -> list[tuple[str, str]]:
    """Write ``n_events`` earthquake and ``n_noise`` noise traces in true STEAD format.

    Returns the (hdf5_path, csv_path) pairs, ``chunk<k>.hdf5`` / ``chunk<k>.csv``; traces are dealt
    to the chunks round-robin. Magnitude types: mostly ml, some md, mb, mw. Another network (other
    velocities, noisier stations) is the same call with ``vp_km_s``/``vs_km_s``/``noise_scale`` changed.
    """
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    stations = _synthetic_stations(rng, 12)
    t0 = UTCDateTime(2015, 1, 1)
    rows: list[dict] = []
    params: list[SignalParams] = []
    used: set[str] = set()
    for i in range(n_events + n_noise):
        is_noise = i >= n_events
        net, sta, slat, slon, elev = stations[int(rng.integers(len(stations)))]
        base = {
            "network_code": net,
            "receiver_code": sta,
            "receiver_type": "HH",
            "receiver_latitude": f"{slat:.4f}",
            "receiver_longitude": f"{slon:.4f}",
            "receiver_elevation_m": f"{elev:.1f}",
        }
        noise_level = station_noise_level(f"{net}.{sta}") * noise_scale
        if is_noise:
            start = t0 + float(rng.uniform(0, 3.0e7))
            name = f"{sta}.{net}_{start.strftime('%Y%m%d%H%M%S')}_NO"
            while name in used:
                start += 1.0
                name = f"{sta}.{net}_{start.strftime('%Y%m%d%H%M%S')}_NO"
            used.add(name)
            row = {c: "" for c in STEAD_COLUMNS}
            row.update(base)
            row.update(
                {
                    "trace_start_time": start.strftime("%Y-%m-%d %H:%M:%S.%f"),
                    "trace_category": "noise",
                    "trace_name": name,
                }
            )
            rows.append(row)
            params.append(SignalParams(None, None, 0.0, 1.0, 0.0, noise_level))
            continue
        dist = float(rng.uniform(5.0, 110.0))
        az = float(rng.uniform(0, 360))
        depth = float(rng.uniform(2.0, 20.0))
        elat = slat + dist * math.cos(math.radians(az)) / 111.19
        elon = slon + dist * math.sin(math.radians(az)) / (111.19 * math.cos(math.radians(slat)))
        r = math.hypot(dist, depth)
        ml = float(np.round(rng.uniform(0.5, 4.5), 1))
        mtype = str(rng.choice(["ml", "md", "mb", "mw"], p=[0.7, 0.15, 0.1, 0.05]))
        origin = t0 + float(np.round(rng.uniform(0, 3.0e7), 2))
        tp, ts = r / vp_km_s, r / vs_km_s
        p_sample = float(int(rng.integers(300, 1500)))
        s_sample = float(round(p_sample + (ts - tp) * STEAD_RATE))
        start = origin + tp - p_sample / STEAD_RATE
        name = f"{sta}.{net}_{start.strftime('%Y%m%d%H%M%S')}_EV"
        while name in used:
            origin += 1.0
            start += 1.0
            name = f"{sta}.{net}_{start.strftime('%Y%m%d%H%M%S')}_EV"
        used.add(name)
        baz = (az + 180.0) % 360.0
        params.append(SignalParams(p_sample, s_sample, ml, r, baz, noise_level))
        coda = min(STEAD_SAMPLES - 1, s_sample + (4.0 + 2.0 * ml) * STEAD_RATE)
        row = dict(base)
        row.update(
            {
                "p_arrival_sample": repr(p_sample),
                "p_status": "manual",
                "p_weight": "0.5",
                "p_travel_sec": repr(round(tp, 2)),
                "s_arrival_sample": repr(s_sample),
                "s_status": "manual",
                "s_weight": "0.5",
                "source_id": str(10_000_000 + i),
                "source_origin_time": origin.strftime("%Y-%m-%d %H:%M:%S.%f")[:-4],
                "source_origin_uncertainty_sec": "0.3",
                "source_latitude": f"{elat:.4f}",
                "source_longitude": f"{elon:.4f}",
                "source_error_sec": "None",
                "source_gap_deg": "None",
                "source_horizontal_uncertainty_km": "None",
                "source_depth_km": f"{depth:.2f}",
                "source_depth_uncertainty_km": "None",
                "source_magnitude": repr(ml),
                "source_magnitude_type": mtype,
                "source_magnitude_author": "None",
                "source_mechanism_strike_dip_rake": "None",
                "source_distance_deg": f"{dist / 111.19:.2f}",
                "source_distance_km": f"{dist:.2f}",
                "back_azimuth_deg": f"{baz:.1f}",
                "coda_end_sample": _stead_list([[float(int(coda))]]),
                "trace_start_time": start.strftime("%Y-%m-%d %H:%M:%S.%f"),
                "trace_category": "earthquake_local",
                "trace_name": name,
            }
        )
        rows.append(row)
    arrays = _synthesize_batched(rng, params)
    for row, x, p in zip(rows, arrays, params, strict=True):
        if p.p_sample is not None:
            row["snr_db"] = _stead_list(_snr_db(x, p.p_sample))
    out = []
    n_chunks = max(1, int(chunks))
    for k in range(n_chunks):
        idx = list(range(k, len(rows), n_chunks))
        h5_path = os.path.join(out_dir, f"chunk{k + 1}.hdf5")
        csv_path = os.path.join(out_dir, f"chunk{k + 1}.csv")
        _write_stead_h5(h5_path, [rows[i]["trace_name"] for i in idx], arrays[idx], [rows[i] for i in idx])
        _write_stead_csv(csv_path, [rows[i] for i in idx])
        out.append((h5_path, csv_path))
    return out


def _synthesize_batched(
    rng: np.random.Generator,
    params: Sequence[SignalParams],
    batch: int = 128,
    n_samples: int = STEAD_SAMPLES,
    rate: float = STEAD_RATE,
) -> np.ndarray:
    out = np.empty((len(params), 3, n_samples), dtype=np.float32)
    for a in range(0, len(params), batch):
        out[a : a + batch] = synthesize(rng, params[a : a + batch], n_samples, rate)
    return out


def write_stead_from_metadata(csv_path: str, out_dir: str, seed: int) -> tuple[str, str]:
    """Synthetic waveforms for the REAL rows of a STEAD CSV (P/S samples, magnitude, distance as given).

    The CSV is copied unchanged next to the new HDF5 file; returns (hdf5_path, csv_path).
    """
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    params = []
    for row in rows:
        level = station_noise_level(f"{row.get('network_code')}.{row.get('receiver_code')}")
        p = clean_float(row.get("p_arrival_sample"))
        if "noise" in (row.get("trace_category") or "") or p is None:
            params.append(SignalParams(None, None, 0.0, 1.0, 0.0, level))
            continue
        dist = clean_float(row.get("source_distance_km")) or 50.0
        depth = clean_float(row.get("source_depth_km")) or 10.0
        params.append(
            SignalParams(
                p,
                clean_float(row.get("s_arrival_sample")),
                clean_float(row.get("source_magnitude")) or 2.0,
                math.hypot(dist, depth),
                clean_float(row.get("back_azimuth_deg")) or 0.0,
                level,
            )
        )
    arrays = _synthesize_batched(rng, params)
    base = os.path.splitext(os.path.basename(csv_path))[0]
    h5_out = os.path.join(out_dir, f"{base}.hdf5")
    csv_out = os.path.join(out_dir, f"{base}.csv")
    _write_stead_h5(h5_out, [r["trace_name"] for r in rows], arrays, rows)
    if os.path.abspath(csv_out) != os.path.abspath(csv_path):
        shutil.copyfile(csv_path, csv_out)
    return h5_out, csv_out


# ----------------------------------------------------------------------------------------- continuous
def write_continuous(
    out_dir: str,
    seed: int,
    duration_s: float = 3600.0,
    n_events: int = 10,
    stations: Sequence[tuple[str, str, str, float, float]] = DEFAULT_STATIONS,
    sampling_rate: float = 100.0,
    start: UTCDateTime | None = None,
    catalog_formats: Sequence[str] = (),
) -> tuple[list[str], str, list[dict]]:
    """Continuous multi-station HH? data with events at known times.

    Writes one miniSEED file per station (float32 encoding) and ``catalog.xml`` (QuakeML with picks,
    arrivals with distances and ML magnitudes); ``catalog_formats`` may add "nordic" / "csv" copies.
    Pick times lie on the sample grid. Returns (miniSEED paths, QuakeML path, truth), truth being one
    dict per event: event_id, origin_time, latitude, longitude, depth_km, magnitude, magnitude_type,
    picks [{seed_id, phase, time, distance_km}].
    """
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    t0 = start or UTCDateTime(2024, 1, 1)
    n = int(round(duration_s * sampling_rate))
    lat0 = float(np.mean([s[3] for s in stations]))
    lon0 = float(np.mean([s[4] for s in stations]))
    usable = duration_s - 200.0
    spacing = usable / max(n_events, 1)
    truth: list[dict] = []
    for i in range(n_events):
        otime = t0 + 60.0 + spacing * i + float(rng.uniform(0, max(spacing - 120.0, 1.0)))
        otime = t0 + round((otime - t0) * sampling_rate) / sampling_rate
        elat = lat0 + float(rng.uniform(-0.4, 0.4))
        elon = lon0 + float(rng.uniform(-0.4, 0.4))
        truth.append(
            {
                "event_id": f"smi:quakestack/synthetic/event/{seed}/{i}",
                "origin_time": otime,
                "latitude": round(elat, 4),
                "longitude": round(elon, 4),
                "depth_km": round(float(rng.uniform(3.0, 15.0)), 2),
                "magnitude": round(float(rng.uniform(2.0, 4.0)), 1),
                "magnitude_type": "ml",
                "picks": [],
            }
        )
    paths = []
    for net, sta, loc, slat, slon in stations:
        level = station_noise_level(f"{net}.{sta}")
        data = coloured_noise(rng, (3, n), sampling_rate) * level
        for ev in truth:
            dist, baz = _distance_km(slat, slon, ev["latitude"], ev["longitude"])
            r = math.hypot(dist, ev["depth_km"])
            p_off = round(r / VP_KM_S * sampling_rate)
            s_off = round(r / VS_KM_S * sampling_rate)
            o = round((ev["origin_time"] - t0) * sampling_rate)
            seg_len = s_off - p_off + int(60 * sampling_rate)
            a = o + p_off
            sig = event_signal(
                rng,
                SignalParams(0.0, float(s_off - p_off), ev["magnitude"], r, baz, level),
                seg_len,
                sampling_rate,
            )
            b = min(n, a + seg_len)
            if a < n:
                data[:, a:b] += sig[:, : b - a]
            for phase, off, cha in (("P", p_off, "HHZ"), ("S", s_off, "HHN")):
                ev["picks"].append(
                    {
                        "seed_id": f"{net}.{sta}.{loc}.{cha}",
                        "phase": phase,
                        "time": t0 + (o + off) / sampling_rate,
                        "distance_km": round(dist, 3),
                    }
                )
        st = Stream(
            [
                Trace(
                    data=data[c].astype(np.float32),
                    header={
                        "network": net,
                        "station": sta,
                        "location": loc,
                        "channel": f"HH{comp}",
                        "sampling_rate": sampling_rate,
                        "starttime": t0,
                    },
                )
                for c, comp in enumerate("ZNE")
            ]
        )
        path = os.path.join(out_dir, f"{net}.{sta}.{loc}.mseed")
        st.write(path, format="MSEED", encoding="FLOAT32", reclen=4096)
        paths.append(path)
    qml = os.path.join(out_dir, "catalog.xml")
    write_catalog(truth, qml, "quakeml")
    for fmt in catalog_formats:
        write_catalog(truth, os.path.join(out_dir, f"catalog.{'nordic' if fmt == 'nordic' else fmt}"), fmt)
    return paths, qml, truth


def _to_obspy_catalog(events: Sequence[dict]) -> Catalog:
    cat = Catalog(resource_id=ResourceIdentifier("smi:quakestack/synthetic/catalog"))
    for ev in events:
        eid = ev["event_id"]
        origin = Origin(
            resource_id=ResourceIdentifier(f"{eid}/origin"),
            time=ev["origin_time"],
            latitude=ev.get("latitude"),
            longitude=ev.get("longitude"),
            depth=None if ev.get("depth_km") is None else ev["depth_km"] * 1000.0,
        )
        mag = Magnitude(
            resource_id=ResourceIdentifier(f"{eid}/magnitude"),
            mag=ev.get("magnitude"),
            magnitude_type=(ev.get("magnitude_type") or "ml").upper().replace("ML", "ML"),
            origin_id=origin.resource_id,
        )
        e = Event(resource_id=ResourceIdentifier(eid), event_type="earthquake")
        for k, pk in enumerate(ev["picks"]):
            net, sta, loc, cha = pk["seed_id"].split(".")
            pick = Pick(
                resource_id=ResourceIdentifier(f"{eid}/pick/{k}"),
                time=pk["time"],
                waveform_id=WaveformStreamID(net, sta, loc, cha),
                phase_hint=pk["phase"],
                evaluation_mode="manual",
            )
            e.picks.append(pick)
            dist = pk.get("distance_km")
            origin.arrivals.append(
                Arrival(
                    resource_id=ResourceIdentifier(f"{eid}/arrival/{k}"),
                    pick_id=pick.resource_id,
                    phase=pk["phase"],
                    distance=None if dist is None else dist / 111.19492664455873,
                )
            )
        e.origins.append(origin)
        e.magnitudes.append(mag)
        e.preferred_origin_id = origin.resource_id
        e.preferred_magnitude_id = mag.resource_id
        cat.append(e)
    return cat


def write_catalog(events: Sequence[dict], path: str, format: str) -> str:
    """Write truth events as 'quakeml', 'nordic' (new Nordic format: keeps network/location) or 'csv'."""
    fmt = format.lower()
    if fmt == "csv":
        cols = [
            "event_id",
            "origin_time",
            "magnitude",
            "magnitude_type",
            "latitude",
            "longitude",
            "depth_km",
            "seed_id",
            "phase",
            "time",
            "distance_km",
        ]
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(cols)
            for ev in events:
                for pk in ev["picks"]:
                    w.writerow(
                        [
                            ev["event_id"],
                            str(ev["origin_time"]),
                            ev.get("magnitude"),
                            ev.get("magnitude_type"),
                            ev.get("latitude"),
                            ev.get("longitude"),
                            ev.get("depth_km"),
                            pk["seed_id"],
                            pk["phase"],
                            str(pk["time"]),
                            pk.get("distance_km"),
                        ]
                    )
        return path
    cat = _to_obspy_catalog(events)
    if fmt == "quakeml":
        cat.write(path, format="QUAKEML")
    elif fmt == "nordic":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cat.write(path, format="NORDIC", nordic_format="NEW")
    else:
        raise ValueError(f"unknown catalog format {format!r}; expected quakeml, nordic or csv")
    return path


__all__ = [
    "DEFAULT_STATIONS",
    "SignalParams",
    "hutton_boore_amplitude_nm",
    "station_noise_level",
    "synthesize",
    "write_catalog",
    "write_continuous",
    "write_stead",
    "write_stead_from_metadata",
    "clean_str",
    "parse_time",
]
