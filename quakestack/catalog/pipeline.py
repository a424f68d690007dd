"""The units an annotation job schedules: one station-day task end to end, then the association of all.

``run_station_day`` reads its day with margins from the archive, runs the picker over it on the
model's device (the streaming Annotator: overlapping windows, batched, stacked probabilities,
triggers), keeps the picks its core owns and writes them to
``catalogs/<catalog-id>/picks/<task-id>.json``. A task whose picks object exists is skipped, so a
resumed job redoes nothing; the object is written in one put, so it is either whole or absent.
``build_catalog`` associates every task's picks, adds network magnitudes and (with an event classifier)
event types, and writes the QuakeML and CSV tables beside them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from quakestack.archive.plan import Plan, StationDayTask
from quakestack.archive.source import Archive
from quakestack.catalog.associate import associate, first_p_per_station, network_magnitude
from quakestack.catalog.classify import check_classifier, combine
from quakestack.catalog.quakeml import all_picks_csv, events_csv, picks_csv, quakeml_bytes
from quakestack.catalog.types import CatalogEvent, PhasePick
from quakestack.errors import FailedPrecondition, InvalidArgument
from quakestack.inference.annotate import AnnotateOptions, Annotator
from quakestack.inference.quality import InputPolicy, component_index, missing_refusal
from quakestack.inference.servables.base import Servable, ServingSpec
from quakestack.layout import catalog_file_key, picks_key
from quakestack.storage import ObjectStore

ANNOTATING_TASKS = ("picking", "detection", "classification")
# Windows per model call on a CPU: a U-Net's activations for 64 windows of 3001 samples stay in cache, where
# 1024 at once run ~2x slower per window (bench/archive.py); a GPU takes the annotator's whole batch.
CPU_PICK_BATCH = 64
LISTED = 50  # refusals listed by name in a summary (all are counted)


def check_picker(servable: Servable) -> None:
    """A model that can neither pick nor detect cannot annotate an archive (refused before any work)."""
    if servable.spec.task not in ANNOTATING_TASKS:
        raise InvalidArgument(f"a {servable.spec.task} model cannot pick or detect; annotation needs a picker or a "
                              "detector (pass magnitude models as the magnitude model)")
    if servable.spec.task != "picking":
        raise FailedPrecondition("catalogs are associated from P and S picks: use a picker (phasenet or a "
                                 "SeisBench picker)")


def _channel_for(task: StationDayTask, phase: str) -> str:
    want = "Z" if phase == "P" else "N"
    for cha in task.channels:
        if cha[-1] in (want, "1" if want == "N" else "3"):
            return cha
    return task.channels[0]


def run_station_day(task: StationDayTask, archive: Archive, picker: Servable, store: ObjectStore, catalog_id: str,
                    options: AnnotateOptions | None = None, response_inventory=None,
                    policy: InputPolicy = InputPolicy()) -> dict[str, Any]:
    """Pick one station-day (skipped when its picks are already stored); returns the task's record, with
    what the data-quality gate did to the day (``input``: used, resampled, gap-filled or refused, why).

    With ``response_inventory`` the instrument response is removed (to velocity) before picking."""
    key = picks_key(catalog_id, task.task_id)
    if store.exists(key):
        record = store.get_json(key)
        return {**record, "skipped": True}
    check_picker(picker)
    started = time.monotonic()
    net, sta, loc, _band = task.stream.split(".")
    stream = archive.read(net, sta, loc, task.channels, task.read_start, task.read_end,
                          response_inventory=response_inventory)
    picks: list[PhasePick] = []
    seconds = 0.0
    gate: dict[str, Any] = {}
    if len(stream):
        annotator = Annotator(picker.spec, _batched(picker), options or AnnotateOptions(), policy=policy)
        annotator.add_stream(stream)
        found = annotator.step()[1] + annotator.finish()[1]
        reports = annotator.reports()
        gate = reports[0].to_dict() if reports else {
            "station": task.station, "outcome": "refused",
            "refused": f"no channel of {', '.join(task.channels)} is one of the model's {picker.spec.components}"}
        picks = [PhasePick(task.station, p.phase, float(p.time), float(p.probability), _channel_for(task, p.phase))
                 for p in found if task.owns(float(p.time))]
        covered = [(max(tr.stats.starttime.timestamp, task.start), min(tr.stats.endtime.timestamp, task.end))
                   for tr in stream.select(channel=task.channels[0])]
        seconds = float(sum(max(0.0, b - a) for a, b in covered))
    record = {"task": dataclasses.asdict(task), "task_id": task.task_id, "no_data": not len(stream),
              "data_seconds": seconds, "input": gate,
              "picks": [p.to_dict() for p in sorted(picks, key=lambda p: p.time)],
              "compute_s": round(time.monotonic() - started, 3)}
    store.put_json(key, record)
    return {**record, "skipped": False}


def _batched(model: Servable):
    """The model's run over a batch of windows, in CPU_PICK_BATCH pieces on a CPU."""
    if getattr(model, "device", None) is not None and model.device.type != "cpu":
        return lambda x: model.run(x, {})

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        parts = [model.run(x[i:i + CPU_PICK_BATCH], {}) for i in range(0, len(x), CPU_PICK_BATCH)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    return run


def load_task_picks(store: ObjectStore, catalog_id: str, tasks: Sequence[StationDayTask]
                    ) -> tuple[list[PhasePick], dict[str, Any]]:
    """Every task's picks, and what the quality gate did to the station-days (outcomes counted, each
    refusal with its station-day); a task without its picks object is not done (the catalog waits for it)."""
    missing = [t.task_id for t in tasks if not store.exists(picks_key(catalog_id, t.task_id))]
    if missing:
        raise FailedPrecondition(f"{len(missing)} station-day task(s) not done: {', '.join(missing[:10])}")
    picks = []
    gate: dict[str, Any] = {"used": 0, "resampled": 0, "gap-filled": 0, "refused": 0, "gap_filled_samples": 0,
                            "refusals": []}
    for task in tasks:
        record = store.get_json(picks_key(catalog_id, task.task_id))
        picks += [PhasePick.from_dict(p) for p in record["picks"]]
        outcome = record.get("input") or {}
        if outcome:
            gate[outcome["outcome"]] += 1
            gate["gap_filled_samples"] += int(outcome.get("gap_filled_samples", 0))
            if outcome.get("refused"):
                gate["refusals"].append(f"{task.task_id}: {outcome['refused']}")
    return picks, gate


def station_windows(event: CatalogEvent, plan: Plan, archive: Archive, spec: ServingSpec,
                    refused: dict[str, str] | None = None) -> tuple[list[str], np.ndarray | None]:
    """One window per station with an associated P, shaped for ``spec`` [N, C, L] and placed with its trained
    P offset at the station's P; None when there is none. A station without every component the model
    reads, or whose window the archive does not fill, gets no window (its magnitude would come from zeros
    the model never saw): it goes into ``refused`` with why."""
    streams = {t.station: t for t in plan.tasks}
    windows, names = [], []
    refused = {} if refused is None else refused
    for station, pick in sorted(first_p_per_station(event).items()):
        task = streams.get(station)
        if task is None:
            continue
        t0 = pick.time - spec.p_offset_s
        net, sta, loc, _ = task.stream.split(".")
        stream = archive.read(net, sta, loc, task.channels, t0 - 1.0, t0 + spec.n_samples / spec.sampling_rate + 1.0)
        x = np.zeros((len(spec.components), spec.n_samples), np.float32)
        filled = np.zeros(len(spec.components), np.int64)
        for tr in stream:
            i = component_index(tr.stats.channel[-1:], spec.components)
            if i is None:
                continue
            k = int(round((t0 - tr.stats.starttime.timestamp) * tr.stats.sampling_rate))
            seg = np.ma.filled(np.ma.masked_invalid(tr.data[max(k, 0):k + spec.n_samples]), np.nan).astype(np.float32)
            x[i, max(-k, 0):max(-k, 0) + seg.size] = seg
            filled[i] += int(np.isfinite(seg).sum())
        found = "".join(c for i, c in enumerate(spec.components) if filled[i])
        if len(found) < len(spec.components):
            refused[station] = missing_refusal(found, spec.components)
        elif (filled < spec.n_samples).any():
            refused[station] = (f"the archive fills {int(filled.min())} of the window's {spec.n_samples} samples "
                                "(a gap or the end of the data)")
        else:
            windows.append(x)
            names.append(station)
    return names, (np.stack(windows) if windows else None)


def station_magnitudes(event: CatalogEvent, plan: Plan, archive: Archive, model: Servable,
                       refused: dict[str, str] | None = None) -> dict[str, float]:
    """One magnitude per station, from the model's window placed with its trained P offset at the station's P;
    stations refused by :func:`station_windows` go into ``refused``."""
    names, windows = station_windows(event, plan, archive, model.spec, refused)
    if windows is None:
        return {}
    mags = model.run(windows, {})["magnitude"]
    return {name: float(m) for name, m in zip(names, mags, strict=True)}


def station_class_probabilities(event: CatalogEvent, plan: Plan, archive: Archive, model: Servable,
                                refused: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """The classifier's class probabilities (``class_names`` order) per station, windows placed at the P."""
    names, windows = station_windows(event, plan, archive, model.spec, refused)
    if windows is None:
        return {}
    probabilities = model.run(windows, {})["class_probabilities"]
    return dict(zip(names, probabilities, strict=True))


def build_catalog(store: ObjectStore, catalog_id: str, plan: Plan, archive: Archive,
                  params: dict[str, Any] | None = None, magnitude_model: Servable | None = None,
                  classifier_model: Servable | None = None, *, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Associate all tasks' picks, add network magnitudes and event types, write catalog.xml, events.csv,
    picks.csv, summary. ``cache_dir`` holds 1D travel-time tables (default: the settings' cache_dir)."""
    if magnitude_model is not None and magnitude_model.spec.task != "magnitude":
        raise InvalidArgument(f"magnitude_model must be a magnitude model, not a {magnitude_model.spec.task} model")
    if classifier_model is not None:
        check_classifier(classifier_model)
    picks, gate = load_task_picks(store, catalog_id, plan.tasks)
    started = time.monotonic()
    events = associate(picks, plan.stations, params, id_prefix=f"smi:quakestack/catalogs/{catalog_id}",
                       cache_dir=cache_dir)
    association_s = time.monotonic() - started
    refused_windows: list[str] = []
    if magnitude_model is not None:
        for ev in events:
            refused: dict[str, str] = {}
            network_magnitude(ev, station_magnitudes(ev, plan, archive, magnitude_model, refused))
            refused_windows += [f"magnitude, {ev.event_id}, {station}: {why}" for station, why in refused.items()]
    if classifier_model is not None:
        for ev in events:
            refused = {}
            combine(ev, station_class_probabilities(ev, plan, archive, classifier_model, refused),
                    classifier_model.spec.class_names)
            refused_windows += [f"event type, {ev.event_id}, {station}: {why}" for station, why in refused.items()]
    store.put_bytes(catalog_file_key(catalog_id, "events.csv"), events_csv(events), content_type="text/csv")
    store.put_bytes(catalog_file_key(catalog_id, "picks.csv"), picks_csv(events), content_type="text/csv")
    store.put_bytes(catalog_file_key(catalog_id, "all_picks.csv"), all_picks_csv(picks, events),
                    content_type="text/csv")
    store.put_bytes(catalog_file_key(catalog_id, "catalog.xml"),
                    quakeml_bytes(events, f"smi:quakestack/catalogs/{catalog_id}"), content_type="application/xml")
    summary = {"catalog_id": catalog_id, "events": len(events), "picks": len(picks),
               "associated_picks": sum(len(e.picks) for e in events), "station_days": len(plan.tasks),
               "missing_station_days": plan.missing, "association_s": round(association_s, 3),
               "event_types": _type_counts(events),
               "events_at_search_edge": sum(bool(e.search_edge) for e in events),
               "input": {**gate, "refusals": gate["refusals"][:LISTED]},
               "refused_station_windows": len(refused_windows), "refused_station_window_list": refused_windows[:LISTED]}
    store.put_json(catalog_file_key(catalog_id, "summary.json"), summary)
    return {**summary, "catalog": events}


def _type_counts(events: Sequence[CatalogEvent]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ev in events:
        counts[ev.event_type] = counts.get(ev.event_type, 0) + 1
    return dict(sorted(counts.items()))
