"""A finished job's catalog as stored under `catalogs/<job-id>/`: its files, its evaluation, its plots."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from quakestack.archive.inventory import StationCoordinates
from quakestack.catalog.evaluate import evaluate_catalog, evaluation_plots, match_events, read_reference
from quakestack.config import Settings
from quakestack.errors import InvalidArgument
from quakestack.layout import catalog_evaluation_prefix, catalog_file_key, validate_key
from quakestack.paths import allowed_local_path
from quakestack.storage import ObjectStore

FILES = {"quakeml": "catalog.xml", "csv": "events.csv", "events-csv": "events.csv", "picks-csv": "picks.csv",
         "all-picks-csv": "all_picks.csv"}


def catalog_file(job_id: str, fmt: str = "quakeml") -> str:
    """The object key of one catalog file: quakeml (catalog.xml), csv/events-csv or picks-csv."""
    if fmt not in FILES:
        raise InvalidArgument(f"catalog format must be one of {', '.join(FILES)}, got {fmt!r}")
    return catalog_file_key(job_id, FILES[fmt])


def read_location(store: ObjectStore, settings: Settings, location: dict[str, str], what: str) -> tuple[bytes, str]:
    """The bytes of a Location ({"object_key"} or an allow-listed {"local_path"}) and its name."""
    if location.get("local_path"):
        path = allowed_local_path(location["local_path"], settings.data_allowed_dirs, f"{what}.local_path",
                                  kind="file")
        return Path(path).read_bytes(), str(path)
    if location.get("object_key"):
        return store.get_bytes(validate_key(location["object_key"])), location["object_key"]
    raise InvalidArgument(f"{what} is required: an object key or a local path")


def evaluate_stored(store: ObjectStore, job_id: str, spec: dict[str, Any], reference: bytes, name: str, *,
                    time_tolerance_s: float = 0.0, distance_tolerance_km: float = 0.0) -> dict[str, Any]:
    """Match the stored catalog against a reference inside the job's time range; store the plots and figures."""
    time_tolerance_s = time_tolerance_s or 2.0
    distance_tolerance_km = distance_tolerance_km or 10.0
    predicted = read_reference(store.get_bytes(catalog_file(job_id, "csv")), "events.csv")
    wanted = [e for e in read_reference(reference, name) if spec["start"] <= e.origin_time < spec["end"]]
    figures = evaluate_catalog(predicted, wanted, time_tolerance_s, distance_tolerance_km)
    stations = [StationCoordinates(**s) for s in spec.get("stations", {}).values()]
    plots = evaluation_plots(predicted, wanted, stations, match_events(predicted, wanted, time_tolerance_s,
                                                                       distance_tolerance_km))
    evaluation_id = uuid.uuid4().hex[:12]
    prefix = catalog_evaluation_prefix(job_id, evaluation_id)
    keys = []
    for file_name, png in sorted(plots.items()):
        store.put_bytes(prefix + file_name, png, content_type="image/png")
        keys.append(prefix + file_name)
    store.put_bytes(prefix + "metrics.json", json.dumps({"reference": name, **figures}, indent=1).encode(),
                    content_type="application/json")
    return {**figures, "evaluation_id": evaluation_id, "artifact_keys": keys}
