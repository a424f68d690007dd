"""The event classifier's label as each event's QuakeML type: per-station windows at the P, mean per event,
written to QuakeML and events.csv and read back through obspy.read_events; other models refused."""

from __future__ import annotations

import csv
import io
import os

import numpy as np
import obspy
import pytest
import torch

from quakestack.archive.inventory import read_inventory
from quakestack.archive.plan import plan_station_days
from quakestack.archive.selection import Selection
from quakestack.archive.source import Archive
from quakestack.catalog.associate import associate
from quakestack.catalog.classify import EVENT_TYPES, check_classifier, combine
from quakestack.catalog.pipeline import build_catalog, station_class_probabilities
from quakestack.catalog.quakeml import classification_of
from quakestack.catalog.types import CatalogEvent
from quakestack.errors import InvalidArgument
from quakestack.inference.servables.factory import build_servable
from quakestack.layout import picks_key
from quakestack.model_store import model_card
from quakestack.models.spec import EVENT_CLASSES
from quakestack.models.zoo import build_model
from tests.catalog.test_associate import _stations, _truth_picks

CLASSIFIER_HP = {"n_samples": 3000, "width": 0.05, "fc_units": 8, "dropout": 0.0}


def classifier(bias: tuple[float, float, float] | None = None, seed: int = 0):
    """The zoo's event classifier, small and untrained; with ``bias`` its last layer answers softmax(bias) for
    every window (zero weights), so the expected label and probability are known exactly."""
    torch.manual_seed(seed)
    model, hp, _ = build_model("event_classifier", CLASSIFIER_HP)
    if bias is not None:
        last = model.classifier[-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.copy_(torch.tensor(bias))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    card = model_card("event_classifier", hp, dataset="x", p_offset_s=5.0, source={"job_id": "x", "epoch": 1})
    return build_servable(card, buffer.getvalue(), torch.device("cpu"))


def _softmax(bias) -> np.ndarray:
    e = np.exp(np.asarray(bias, float))
    return e / e.sum()


def test_the_mean_probability_names_the_type_noise_is_not_existing() -> None:
    assert set(EVENT_TYPES.values()) <= set(obspy.core.event.header.EventType)
    ev = CatalogEvent("e", 0.0, 0.0, 0.0, 5.0)
    combine(ev, {"A": [0.2, 0.1, 0.7], "B": [0.4, 0.1, 0.5], "C": [0.3, 0.1, 0.6], "D": [np.nan, 0, 0]},
            EVENT_CLASSES)
    assert ev.event_type == "not existing" and ev.event_type_probability == pytest.approx(0.6)
    assert ev.event_type_certainty == "suspected" and ev.classification_count == 3
    assert ev.class_probabilities == pytest.approx({"earthquake": 0.3, "explosion": 0.1, "noise": 0.6})
    combine(ev, {"A": [0.05, 0.9, 0.05]}, EVENT_CLASSES)
    assert (ev.event_type, ev.event_type_certainty) == ("explosion", "known")
    untouched = combine(CatalogEvent("f", 0.0, 0.0, 0.0, 5.0), {}, EVENT_CLASSES)
    assert untouched.event_type == "earthquake" and untouched.event_type_probability is None


def _store_truth_picks(store, catalog_id: str, plan, network) -> None:
    """What the station-day tasks would have written: each task's picks, here the truth's (jittered)."""
    picks = _truth_picks(network, np.random.default_rng(3))
    for task in plan.tasks:
        mine = [p.to_dict() for p in picks if p.station == task.station and task.owns(p.time)]
        store.put_json(picks_key(catalog_id, task.task_id), {"task_id": task.task_id, "picks": mine})


@pytest.fixture(scope="module")
def archive_plan(network):
    archive = Archive.local_sds(network.sds_root, [os.path.dirname(network.sds_root)])
    plan = plan_station_days(archive, Selection(channel="HH?"), network.start, network.end, margin_s=60,
                             inventory=read_inventory(path=network.inventory_path))
    return archive, plan


@pytest.mark.parametrize("bias, label, quakeml_type", [((0.0, 4.0, 0.0), "explosion", "explosion"),
                                                       ((0.0, 0.0, 1.0), "noise", "not existing")])
def test_event_types_round_trip_through_quakeml_and_csv(network, weed_store, archive_plan, bias, label,
                                                        quakeml_type, tmp_path) -> None:
    archive, plan = archive_plan
    catalog_id = f"classified-{label}"
    _store_truth_picks(weed_store, catalog_id, plan, network)
    result = build_catalog(weed_store, catalog_id, plan, archive, classifier_model=classifier(bias),
                           cache_dir=tmp_path)
    expected = _softmax(bias)
    assert result["events"] == len(network.events) and result["event_types"] == {quakeml_type: result["events"]}
    back = obspy.read_events(io.BytesIO(weed_store.get_bytes(f"catalogs/{catalog_id}/catalog.xml")))
    rows = list(csv.DictReader(io.StringIO(weed_store.get_bytes(f"catalogs/{catalog_id}/events.csv").decode())))
    certainty = "known" if expected.max() >= 0.8 else "suspected"
    for ours, theirs, row in zip(result["catalog"], back, rows, strict=True):
        assert ours.classification_count >= 6 and ours.event_type_probability == pytest.approx(expected.max(),
                                                                                               abs=1e-5)
        assert theirs.event_type == quakeml_type and theirs.event_type_certainty == certainty
        figures = classification_of(theirs)
        assert figures["event_type_probability"] == pytest.approx(expected.max(), abs=1e-4)
        assert [figures[c] for c in EVENT_CLASSES] == pytest.approx(expected, abs=1e-4)
        assert figures["stations"] == ours.classification_count
        assert row["event_type"] == quakeml_type and row["event_type_certainty"] == certainty
        assert float(row["event_type_probability"]) == pytest.approx(expected.max(), abs=1e-4)


def test_an_untrained_classifier_is_the_mean_of_its_stations(network, archive_plan) -> None:
    archive, plan = archive_plan
    model = classifier(seed=7)
    events = associate(_truth_picks(network, np.random.default_rng(4)), _stations(network))
    for ev in events[:3]:
        per_station = station_class_probabilities(ev, plan, archive, model)
        assert len(per_station) >= 6 and all(p.shape == (3,) for p in per_station.values())
        combine(ev, per_station, model.spec.class_names)
        mean = np.mean(list(per_station.values()), axis=0)
        assert ev.class_probabilities == pytest.approx(dict(zip(EVENT_CLASSES, mean, strict=True)))
        assert ev.event_type == EVENT_TYPES[EVENT_CLASSES[int(np.argmax(mean))]]
        assert classification_of(obspy.read_events(io.BytesIO(_quakeml([ev])))[0])["event_type_probability"] \
            == pytest.approx(mean.max(), abs=1e-4)
    assert classification_of(obspy.read_events(io.BytesIO(_quakeml(events[3:4])))[0]) is None


def _quakeml(events) -> bytes:
    from quakestack.catalog.quakeml import quakeml_bytes

    return quakeml_bytes(events)


@pytest.mark.parametrize("architecture, hp, task", [("convnetquake_ingv", {"n_samples": 1000}, "magnitude"),
                                                    ("phasenet", {"n_samples": 3001}, "picking"),
                                                    ("convnetquake", {}, "detection")])
def test_a_model_that_does_not_classify_events_is_refused(network, weed_store, archive_plan, architecture, hp,
                                                          task) -> None:
    archive, plan = archive_plan
    model, resolved, _ = build_model(architecture, hp)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    card = model_card(architecture, resolved, dataset="x", source={"job_id": "x", "epoch": 1})
    servable = build_servable(card, buffer.getvalue(), torch.device("cpu"))
    with pytest.raises(InvalidArgument, match=f"classifier_model must be a classification model .* not a {task}"):
        check_classifier(servable)
    with pytest.raises(InvalidArgument, match="classifier_model must be a classification model"):
        build_catalog(weed_store, "never-built", plan, archive, classifier_model=servable)
    assert not weed_store.exists("catalogs/never-built/catalog.xml")
