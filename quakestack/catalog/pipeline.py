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
from quakestack.catalog.quakeml import events_csv, picks_csv, quakeml_bytes
from quakestack.catalog.types import CatalogEvent, PhasePick
from quakestack.errors import FailedPrecondition, InvalidArgument
from quakestack.inference.annotate import AnnotateOptions, Annotator
from quakestack.inference.servables.base import Servable, ServingSpec
from quakestack.layout import catalog_file_key, picks_key
from quakestack.storage import ObjectStore

ANNOTATING_TASKS = ("picking", "detection", "classification")
# Windows per model call on a CPU: a U-Net's activations for 64 windows of 3001 samples stay in cache, where
# 1024 at once run ~2x slower per window (bench/archive.py); a GPU takes the annotator's whole batch.
CPU_PICK_BATCH = 64


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
                    options: AnnotateOptions | None = None, response_inventory=None) -> dict[str, Any]:
    """Pick one station-day (skipped when its picks are already stored); returns the task's record.

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
    if len(stream):
        annotator = Annotator(picker.spec, _batched(picker), options or AnnotateOptions())
        annotator.add_stream(stream)
        found = annotator.step()[1] + annotator.finish()[1]
        picks = [PhasePick(task.station, p.phase, float(p.time), float(p.probability), _channel_for(task, p.phase))
                 for p in found if task.owns(float(p.time))]
        covered = [(max(tr.stats.starttime.timestamp, task.start), min(tr.stats.endtime.timestamp, task.end))
                   for tr in stream.select(channel=task.channels[0])]
        seconds = float(sum(max(0.0, b - a) for a, b in covered))
    record = {"task": dataclasses.asdict(task), "task_id": task.task_id, "no_data": not len(stream),
              "data_seconds": seconds, "picks": [p.to_dict() for p in sorted(picks, key=lambda p: p.time)],
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


def load_task_picks(store: ObjectStore, catalog_id: str, tasks: Sequence[StationDayTask]) -> list[PhasePick]:
    """Every task's picks; a task without its picks object is not done (the catalog waits for it)."""
    missing = [t.task_id for t in tasks if not store.exists(picks_key(catalog_id, t.task_id))]
    if missing:
        raise FailedPrecondition(f"{len(missing)} station-day task(s) not done: {', '.join(missing[:10])}")
    picks = []
    for task in tasks:
        picks += [PhasePick.from_dict(p) for p in store.get_json(picks_key(catalog_id, task.task_id))["picks"]]
    return picks


def station_windows(event: CatalogEvent, plan: Plan, archive: Archive, spec: ServingSpec
                    ) -> tuple[list[str], np.ndarray | None]:
    """One window per station with an associated P, shaped for ``spec`` [N, C, L] and placed with its trained
    P offset at the station's P (zeros where the archive has no samples); None when there is none."""
    streams = {t.station: t for t in plan.tasks}
    windows, names = [], []
    for station, pick in sorted(first_p_per_station(event).items()):
        task = streams.get(station)
        if task is None:
            continue
        t0 = pick.time - spec.p_offset_s
        net, sta, loc, _ = task.stream.split(".")
        stream = archive.read(net, sta, loc, task.channels, t0 - 1.0, t0 + spec.n_samples / spec.sampling_rate + 1.0)
        x = np.zeros((len(spec.components), spec.n_samples), np.float32)
        for i, comp in enumerate(spec.components):
            for tr in stream:
                if tr.stats.channel[-1] == comp or (comp, tr.stats.channel[-1]) in (("N", "1"), ("E", "2")):
                    k = int(round((t0 - tr.stats.starttime.timestamp) * tr.stats.sampling_rate))
                    seg = tr.data[max(k, 0):k + spec.n_samples].astype(np.float32)
                    x[i, max(-k, 0):max(-k, 0) + seg.size] = seg
        windows.append(x)
        names.append(station)
    return names, (np.stack(windows) if windows else None)


def station_magnitudes(event: CatalogEvent, plan: Plan, archive: Archive, model: Servable) -> dict[str, float]:
    """One magnitude per station, from the model's window placed with its trained P offset at the station's P."""
    names, windows = station_windows(event, plan, archive, model.spec)
    if windows is None:
        return {}
    mags = model.run(windows, {})["magnitude"]
    return {name: float(m) for name, m in zip(names, mags, strict=True)}


def station_class_probabilities(event: CatalogEvent, plan: Plan, archive: Archive,
                                model: Servable) -> dict[str, np.ndarray]:
    """The classifier's class probabilities (``class_names`` order) per station, windows placed at the P."""
    names, windows = station_windows(event, plan, archive, model.spec)
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
    picks = load_task_picks(store, catalog_id, plan.tasks)
    started = time.monotonic()
    events = associate(picks, plan.stations, params, id_prefix=f"smi:quakestack/catalogs/{catalog_id}",
                       cache_dir=cache_dir)
    association_s = time.monotonic() - started
    if magnitude_model is not None:
        for ev in events:
            network_magnitude(ev, station_magnitudes(ev, plan, archive, magnitude_model))
    if classifier_model is not None:
        for ev in events:
            combine(ev, station_class_probabilities(ev, plan, archive, classifier_model),
                    classifier_model.spec.class_names)
    store.put_bytes(catalog_file_key(catalog_id, "events.csv"), events_csv(events), content_type="text/csv")
    store.put_bytes(catalog_file_key(catalog_id, "picks.csv"), picks_csv(events), content_type="text/csv")
    store.put_bytes(catalog_file_key(catalog_id, "catalog.xml"),
                    quakeml_bytes(events, f"smi:quakestack/catalogs/{catalog_id}"), content_type="application/xml")
    summary = {"catalog_id": catalog_id, "events": len(events), "picks": len(picks),
               "associated_picks": sum(len(e.picks) for e in events), "station_days": len(plan.tasks),
               "missing_station_days": plan.missing, "association_s": round(association_s, 3),
               "event_types": _type_counts(events)}
    store.put_json(catalog_file_key(catalog_id, "summary.json"), summary)
    return {**summary, "catalog": events}


def _type_counts(events: Sequence[CatalogEvent]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ev in events:
        counts[ev.event_type] = counts.get(ev.event_type, 0) + 1
    return dict(sorted(counts.items()))
