"""The catalog as QuakeML (ObsPy: events, origins, arrivals, picks, magnitudes, station magnitudes) and CSV.

An event classifier's result is the event's ``type`` and ``typeCertainty``; its probabilities, which
QuakeML has no field for, are an event comment (``CLASSIFIER_COMMENT`` prefix) that ``classification_of``
reads back from what ``obspy.read_events`` returns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from obspy import UTCDateTime
from obspy.core.event import (
    Arrival,
    Catalog,
    Comment,
    CreationInfo,
    Event,
    Magnitude,
    Origin,
    OriginQuality,
    Pick,
    QuantityError,
    ResourceIdentifier,
    StationMagnitude,
    StationMagnitudeContribution,
    WaveformStreamID,
)

from quakestack.catalog.origin_quality import KM_PER_DEGREE
from quakestack.catalog.types import CatalogEvent, PhasePick

AGENCY = "quakestack"
EVENT_COLUMNS = ["event_id", "origin_time", "latitude", "longitude", "depth_km", "magnitude", "magnitude_type",
                 "magnitude_spread", "magnitude_count", "n_picks", "event_type", "event_type_probability",
                 "event_type_certainty", "n_stations", "azimuthal_gap_deg", "rms_residual_s", "min_distance_km",
                 "search_edge"]
EDGE_COMMENT = "at the edge of the search volume:"
CLASSIFIER_COMMENT = "classifier:"
PICK_COLUMNS = ["event_id", "station", "channel", "phase", "time", "probability", "residual_s"]


def _pick_channel(station: str, channel: str, phase: str) -> WaveformStreamID:
    net, sta, loc = station.split(".")
    return WaveformStreamID(net, sta, loc, channel or ("HHZ" if phase == "P" else "HHN"))


def to_obspy(events: Sequence[CatalogEvent], catalog_id: str = "smi:quakestack/catalog") -> Catalog:
    cat = Catalog(resource_id=ResourceIdentifier(catalog_id), creation_info=CreationInfo(agency_id=AGENCY))
    for ev in events:
        eid = ev.event_id
        origin = Origin(resource_id=ResourceIdentifier(f"{eid}/origin"), time=UTCDateTime(ev.origin_time),
                        latitude=round(ev.latitude, 6), longitude=round(ev.longitude, 6),
                        depth=round(ev.depth_km * 1000.0, 1), evaluation_mode="automatic",
                        quality=_origin_quality(ev))
        if ev.search_edge:  # a grid search's boundary, not a location: said where a reader of the origin sees it
            origin.comments.append(Comment(resource_id=ResourceIdentifier(f"{eid}/origin/comment/edge"),
                                           text=f"{EDGE_COMMENT} {ev.search_edge}"))
        event = Event(resource_id=ResourceIdentifier(eid), event_type=ev.event_type,
                      event_type_certainty=ev.event_type_certainty, creation_info=CreationInfo(agency_id=AGENCY))
        if ev.event_type_probability is not None:
            event.comments.append(Comment(resource_id=ResourceIdentifier(f"{eid}/comment/classifier"),
                                          text=classifier_comment(ev)))
        for pick, residual in ev.picks:
            pid = ResourceIdentifier(f"{eid}/pick/{pick.pick_id}")
            event.picks.append(Pick(resource_id=pid, time=UTCDateTime(pick.time), phase_hint=pick.phase,
                                    waveform_id=_pick_channel(pick.station, pick.channel, pick.phase),
                                    evaluation_mode="automatic",
                                    comments=[Comment(text=f"probability={pick.probability:.4f}")]))
            distance, azimuth = ev.arrival_geometry.get(pick.station, (None, None))
            origin.arrivals.append(Arrival(resource_id=ResourceIdentifier(f"{eid}/arrival/{pick.pick_id}"),
                                           pick_id=pid, phase=pick.phase, time_residual=round(residual, 4),
                                           distance=_rounded(distance, 5), azimuth=_rounded(azimuth, 2)))
        event.origins.append(origin)
        event.preferred_origin_id = origin.resource_id
        if ev.magnitude is not None:
            mag = Magnitude(resource_id=ResourceIdentifier(f"{eid}/magnitude"), mag=round(ev.magnitude, 4),
                            mag_errors=QuantityError(uncertainty=round(ev.magnitude_spread or 0.0, 4)),
                            magnitude_type=ev.magnitude_type, origin_id=origin.resource_id,
                            station_count=ev.magnitude_count, method_id=ResourceIdentifier("smi:quakestack/median"))
            for sm in ev.station_magnitudes:
                smid = ResourceIdentifier(f"{eid}/station_magnitude/{sm.station}")
                net, sta, loc = sm.station.split(".")
                event.station_magnitudes.append(StationMagnitude(
                    resource_id=smid, origin_id=origin.resource_id, mag=round(sm.magnitude, 4),
                    station_magnitude_type=ev.magnitude_type, waveform_id=WaveformStreamID(net, sta, loc, "")))
                mag.station_magnitude_contributions.append(StationMagnitudeContribution(station_magnitude_id=smid,
                                                                                        weight=1.0))
            event.magnitudes.append(mag)
            event.preferred_magnitude_id = mag.resource_id
        cat.append(event)
    return cat


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _origin_quality(ev: CatalogEvent) -> OriginQuality:
    """Every associated phase and station is used (PyOcto keeps no outliers in an event)."""
    return OriginQuality(associated_phase_count=len(ev.picks), used_phase_count=len(ev.picks),
                         associated_station_count=ev.station_count, used_station_count=ev.station_count,
                         standard_error=_rounded(ev.rms_residual_s, 4), azimuthal_gap=_rounded(ev.azimuthal_gap_deg, 2),
                         minimum_distance=_rounded(ev.min_distance_deg, 5),
                         maximum_distance=_rounded(ev.max_distance_deg, 5))


def classifier_comment(ev: CatalogEvent) -> str:
    """``classifier: event_type_probability=0.9312; earthquake=0.9312; explosion=0.0401; noise=0.0287;
    stations=8``."""
    parts = [f"event_type_probability={ev.event_type_probability:.4f}"]
    parts += [f"{name}={p:.4f}" for name, p in ev.class_probabilities.items()]
    parts.append(f"stations={ev.classification_count}")
    return f"{CLASSIFIER_COMMENT} " + "; ".join(parts)


def classification_of(event: Event) -> dict[str, float] | None:
    """The classifier's figures of an ObsPy event read back (``event_type_probability``, one per class,
    ``stations``); None for an event without them."""
    for comment in event.comments:
        if comment.text and comment.text.startswith(CLASSIFIER_COMMENT):
            pairs = (part.split("=", 1) for part in comment.text[len(CLASSIFIER_COMMENT):].split(";"))
            return {key.strip(): float(value) for key, value in pairs}
    return None


def quakeml_bytes(events: Sequence[CatalogEvent], catalog_id: str = "smi:quakestack/catalog") -> bytes:
    buffer = io.BytesIO()
    to_obspy(events, catalog_id).write(buffer, format="QUAKEML")
    return buffer.getvalue()


def events_csv(events: Sequence[CatalogEvent]) -> bytes:
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\n")
    w.writerow(EVENT_COLUMNS)
    for ev in events:
        w.writerow([ev.event_id, UTCDateTime(ev.origin_time).isoformat() + "Z", f"{ev.latitude:.5f}",
                    f"{ev.longitude:.5f}", f"{ev.depth_km:.3f}",
                    "" if ev.magnitude is None else f"{ev.magnitude:.3f}", ev.magnitude_type,
                    "" if ev.magnitude_spread is None else f"{ev.magnitude_spread:.3f}", ev.magnitude_count,
                    len(ev.picks), ev.event_type,
                    "" if ev.event_type_probability is None else f"{ev.event_type_probability:.4f}",
                    ev.event_type_certainty or "", ev.station_count,
                    "" if ev.azimuthal_gap_deg is None else f"{ev.azimuthal_gap_deg:.1f}",
                    "" if ev.rms_residual_s is None else f"{ev.rms_residual_s:.3f}",
                    "" if ev.min_distance_deg is None else f"{ev.min_distance_deg * KM_PER_DEGREE:.2f}",
                    ev.search_edge])
    return buffer.getvalue().encode()


def all_picks_csv(picks: Sequence[PhasePick], events: Sequence[CatalogEvent]) -> bytes:
    """Every pick of every station-day, in time order; the event it was associated with, if any (with its
    residual): what a seismologist checks the associator against."""
    owner = {id(pick): (ev.event_id, residual) for ev in events for pick, residual in ev.picks}
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\n")
    w.writerow(PICK_COLUMNS)
    for pick in sorted(picks, key=lambda p: (p.time, p.station, p.phase)):
        event_id, residual = owner.get(id(pick), ("", None))
        w.writerow([event_id, pick.station, pick.channel, pick.phase, UTCDateTime(pick.time).isoformat() + "Z",
                    f"{pick.probability:.4f}", "" if residual is None else f"{residual:.4f}"])
    return buffer.getvalue().encode()


def picks_csv(events: Sequence[CatalogEvent]) -> bytes:
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\n")
    w.writerow(PICK_COLUMNS)
    for ev in events:
        for pick, residual in ev.picks:
            w.writerow([ev.event_id, pick.station, pick.channel, pick.phase, UTCDateTime(pick.time).isoformat() + "Z",
                        f"{pick.probability:.4f}", f"{residual:.4f}"])
    return buffer.getvalue().encode()
