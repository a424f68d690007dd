"""An event classifier's label as each event's type: per-station class probabilities, combined per event.

The zoo's event classifier (``event_classifier``, classes earthquake / explosion / noise) sees one window
per associated station, placed at the station's P like the magnitude model's. The event's probabilities
are the mean over its stations; the most probable class names its QuakeML ``event_type``: earthquake,
explosion, or "not existing" for noise (QuakeML's value for a detection that is no event).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from quakestack.catalog.types import CatalogEvent
from quakestack.errors import InvalidArgument
from quakestack.inference.servables.base import Servable

# classifier label -> QuakeML EventType (obspy.core.event.header.EventType)
EVENT_TYPES: dict[str, str] = {"earthquake": "earthquake", "explosion": "explosion", "noise": "not existing"}
KNOWN_PROBABILITY = 0.8  # from this mean probability on the type's certainty is "known", below "suspected"


def check_classifier(model: Servable) -> None:
    """A classifier_model must be a classification model over labels that name QuakeML event types."""
    spec = model.spec
    if spec.task != "classification":
        raise InvalidArgument(f"classifier_model must be a classification model (the event classifier), not a "
                              f"{spec.task} model")
    unknown = [c for c in spec.class_names if c not in EVENT_TYPES]
    if not spec.class_names or unknown:
        raise InvalidArgument(f"classifier_model's classes ({', '.join(spec.class_names) or 'none'}) must be among "
                              f"{', '.join(EVENT_TYPES)}")


def combine(event: CatalogEvent, per_station: Mapping[str, Sequence[float]], class_names: Sequence[str]
            ) -> CatalogEvent:
    """Mean probability per class over the stations -> the event's type, its probability and certainty."""
    rows = [np.asarray(p, float) for p in per_station.values() if np.all(np.isfinite(p))]
    if not rows:
        return event
    mean = np.mean(rows, axis=0)
    best = int(np.argmax(mean))
    event.class_probabilities = {name: float(p) for name, p in zip(class_names, mean, strict=True)}
    event.event_type = EVENT_TYPES[class_names[best]]
    event.event_type_probability = float(mean[best])
    event.event_type_certainty = "known" if mean[best] >= KNOWN_PROBABILITY else "suspected"
    event.classification_count = len(rows)
    return event
