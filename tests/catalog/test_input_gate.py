"""A station that lost its horizontals: its station-days are refused for a ZNE picker (not picked on zeros),
its station magnitudes are refused (once 4.89 and 13.0 went into the QuakeML from zero-filled N and E),
and the catalog's summary and the job's final message count both."""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from quakestack.archive.inventory import read_inventory
from quakestack.archive.plan import plan_station_days
from quakestack.archive.selection import Selection
from quakestack.archive.source import Archive
from quakestack.catalog.pipeline import build_catalog, run_station_day, station_magnitudes
from quakestack.catalog.worker import input_note
from quakestack.inference.quality import InputPolicy
from quakestack.inference.servables.factory import build_servable
from quakestack.model_store import model_card
from quakestack.models.zoo import build_model
from tests.catalog.test_associate import _stations, _truth_picks
from tests.catalog.test_classify import _store_truth_picks

Z_ONLY = "N003"


def _servable(architecture: str, hp: dict, p_offset_s: float | None = None):
    torch.manual_seed(0)
    model, hp, _ = build_model(architecture, hp)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    card = model_card(architecture, hp, dataset="x", p_offset_s=p_offset_s, source={"job_id": "x", "epoch": 1})
    return build_servable(card, buffer.getvalue(), torch.device("cpu"))


@pytest.fixture(scope="module")
def z_only_network(network, tmp_path_factory):
    """The network's archive with N003's HHN and HHE removed (a station down to its vertical)."""
    root = tmp_path_factory.mktemp("z-only") / "sds"
    shutil.copytree(network.sds_root, root)
    removed = [path for path in root.rglob("*") if path.is_file() and f".{Z_ONLY}." in path.name
               and path.name.split(".")[3] in ("HHN", "HHE")]
    assert removed
    for path in removed:
        path.unlink()
    for directory in (p for p in root.rglob("HH[NE].D") if p.parent.name == Z_ONLY):
        shutil.rmtree(directory)
    archive = Archive.local_sds(str(root), [os.path.dirname(root)])
    plan = plan_station_days(archive, Selection(channel="HH?"), network.start, network.end, margin_s=60,
                             inventory=read_inventory(path=network.inventory_path))
    return archive, plan


def test_a_z_only_station_day_is_refused_by_a_zne_picker(z_only_network, weed_store) -> None:
    archive, plan = z_only_network
    picker = _servable("phasenet", {"n_samples": 2000, "base_channels": 8, "depth": 4})
    task = next(t for t in plan.tasks if f".{Z_ONLY}." in t.stream)
    record = run_station_day(task, archive, picker, weed_store, "gate-z-only")
    assert record["input"]["outcome"] == "refused" and record["picks"] == []
    assert "has components Z of the model's ZNE" in record["input"]["refused"]
    other = next(t for t in plan.tasks if f".{Z_ONLY}." not in t.stream)
    whole = run_station_day(other, archive, picker, weed_store, "gate-z-only", policy=InputPolicy())
    assert whole["input"]["outcome"] == "used" and whole["input"]["components"] == "ZNE"


def test_station_magnitudes_are_never_made_from_zero_filled_components(network, z_only_network, weed_store,
                                                                       tmp_path: Path) -> None:
    archive, plan = z_only_network
    magnitude = _servable("convnetquake_ingv", {"n_samples": 3000}, p_offset_s=5.0)
    from quakestack.catalog.associate import associate

    events = associate(_truth_picks(network, np.random.default_rng(4)), _stations(network))
    refused: dict[str, str] = {}
    per_station = station_magnitudes(events[0], plan, archive, magnitude, refused)
    assert per_station and not any(Z_ONLY in s for s in per_station)
    (station,) = [s for s in refused if Z_ONLY in s]
    assert "has components Z of the model's ZNE" in refused[station]

    catalog_id = "gate-magnitudes"
    _store_truth_picks(weed_store, catalog_id, plan, network)
    result = build_catalog(weed_store, catalog_id, plan, archive, magnitude_model=magnitude, cache_dir=tmp_path)
    assert result["events"] >= 1
    assert all(Z_ONLY not in sm.station for ev in result["catalog"] for sm in ev.station_magnitudes)
    assert result["refused_station_windows"] >= result["events"]  # N003 in every event
    assert all(Z_ONLY in line for line in result["refused_station_window_list"])
    rows = list(csv.DictReader(io.StringIO(weed_store.get_bytes(f"catalogs/{catalog_id}/all_picks.csv").decode())))
    assert len(rows) == result["picks"] > result["associated_picks"]  # every pick, the false ones too
    assert sum(bool(r["event_id"]) for r in rows) == result["associated_picks"]
    assert all(r["residual_s"] == "" for r in rows if not r["event_id"])
    stored = weed_store.get_json(f"catalogs/{catalog_id}/summary.json")
    assert stored["refused_station_windows"] == result["refused_station_windows"]
    assert "station windows refused for magnitudes or types (see summary.json)" in input_note(result,
                                                                                               len(plan.tasks))
