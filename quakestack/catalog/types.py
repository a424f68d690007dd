"""The records a catalog is made of: picks, associated events and their magnitudes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PhasePick:
    """One pick of one station (NET.STA.LOC), as a picker produced it."""

    station: str
    phase: str  # "P" or "S"
    time: float  # POSIX seconds
    probability: float
    channel: str = ""  # e.g. HHZ, for the pick's waveform id

    @property
    def pick_id(self) -> str:
        return f"{self.station}.{self.phase}.{self.time:.3f}"

    def to_dict(self) -> dict:
        return {"station": self.station, "phase": self.phase, "time": self.time, "probability": self.probability,
                "channel": self.channel}

    @classmethod
    def from_dict(cls, d: dict) -> PhasePick:
        return cls(str(d["station"]), str(d["phase"]), float(d["time"]), float(d["probability"]),
                   str(d.get("channel", "")))


@dataclass
class StationMagnitude:
    station: str
    magnitude: float


@dataclass
class CatalogEvent:
    """An associated event: its origin, its picks (with travel-time residuals), magnitudes and, with an event
    classifier, its type (a QuakeML EventType) with the mean class probabilities over its stations."""

    event_id: str
    origin_time: float
    latitude: float
    longitude: float
    depth_km: float
    picks: list[tuple[PhasePick, float]] = field(default_factory=list)  # (pick, residual s)
    magnitude: float | None = None
    magnitude_spread: float | None = None
    magnitude_count: int = 0
    station_magnitudes: list[StationMagnitude] = field(default_factory=list)
    magnitude_type: str = "ML"
    event_type: str = "earthquake"  # QuakeML EventType; the classifier's label when there is one
    event_type_probability: float | None = None  # the classifier's mean probability of that label
    event_type_certainty: str | None = None  # "known" or "suspected" (QuakeML EventTypeCertainty)
    class_probabilities: dict[str, float] = field(default_factory=dict)
    classification_count: int = 0  # stations whose windows were classified
    # how well the origin is constrained (QuakeML OriginQuality), see quakestack.catalog.origin_quality
    station_count: int = 0
    rms_residual_s: float | None = None
    azimuthal_gap_deg: float | None = None
    min_distance_deg: float | None = None
    max_distance_deg: float | None = None
    search_edge: str = ""  # the edge(s) of the search volume the origin lies on; "" inside
    arrival_geometry: dict[str, tuple[float, float]] = field(default_factory=dict)  # station -> (distance deg, azimuth)
