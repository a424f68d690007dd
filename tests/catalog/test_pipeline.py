"""Station-day tasks end to end on the synthetic network (8 stations, 2 UTC days, archive in object storage):
a briefly trained picker, PyOcto association, the catalog in storage, measured against the truth."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import obspy
import pandas as pd
import pytest
import torch

from quakestack.archive.inventory import read_inventory
from quakestack.archive.plan import plan_station_days
from quakestack.archive.selection import Selection
from quakestack.archive.source import Archive
from quakestack.catalog.evaluate import evaluate_catalog, read_reference
from quakestack.catalog.pipeline import build_catalog, check_picker, run_station_day
from quakestack.data.network import magnitude_windows, picker_windows
from quakestack.errors import InvalidArgument
from quakestack.inference.servables.factory import build_servable
from quakestack.model_store import model_card
from quakestack.models.zoo import build_model, get_architecture, resolve_training_hparams
from quakestack.training.data import SplitData
from quakestack.training.loop import FixedEpochs, run_training, seed_everything
from tests.catalog.conftest import MIDNIGHT_EVENT
from tests.catalog.test_archive import _upload_tree

PICKER_HP = {"n_samples": 2000, "base_channels": 8, "depth": 4}


def _split(x, p, s) -> SplitData:
    return SplitData(x=x, meta=pd.DataFrame(index=range(len(x))), targets={"p_sample": p, "s_sample": s}, extras={})


def trained_picker(epochs: int = 20):
    """PhaseNet-style picker trained in-process through the training loop on the network's physics."""
    seed_everything(0)
    spec = get_architecture("phasenet")
    model, hp, _ = build_model("phasenet", PICKER_HP)
    events: list[dict] = []
    run_training(model=model, spec=spec, arch_hparams=hp,
                 hp=resolve_training_hparams({"learning_rate": 2e-3, "batch_size": 16}),
                 train=_split(*picker_windows(1, 768, PICKER_HP["n_samples"])),
                 val=_split(*picker_windows(2, 128, PICKER_HP["n_samples"])), device=torch.device("cpu"),
                 control=FixedEpochs(epochs), emit=events.append, save_checkpoint=lambda *_: None)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    card = model_card("phasenet", hp, dataset="synthetic-network", source={"job_id": "in-process", "epoch": epochs})
    return build_servable(card, buffer.getvalue(), torch.device("cpu")), events[-1]["metrics"]


MAGNITUDE_P_SAMPLE = 200  # P 2 s into the magnitude model's 10 s windows


def trained_magnitude_model(epochs: int = 25):
    """ConvNetQuake-INGV on 10 s windows with P at 2 s (S-P inside carries the distance), in-process."""
    seed_everything(0)
    spec = get_architecture("convnetquake_ingv")
    model, hp, _ = build_model("convnetquake_ingv", {"n_samples": 1000})

    def split(seed: int, n: int) -> SplitData:
        x, m = magnitude_windows(seed, n, 1000, MAGNITUDE_P_SAMPLE)
        return SplitData(x=x, meta=pd.DataFrame(index=range(n)), extras={},
                         targets={"magnitude": m, "p_arrival_sample": np.full(n, MAGNITUDE_P_SAMPLE, np.float32)})

    events: list[dict] = []
    run_training(model=model, spec=spec, arch_hparams=hp,
                 hp=resolve_training_hparams({"learning_rate": 5e-3, "batch_size": 32}), train=split(3, 2048),
                 val=split(4, 256), device=torch.device("cpu"), control=FixedEpochs(epochs), emit=events.append,
                 save_checkpoint=lambda *_: None)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    card = model_card("convnetquake_ingv", hp, dataset="synthetic-network", p_offset_s=MAGNITUDE_P_SAMPLE / 100,
                      source={"job_id": "in-process", "epoch": epochs})
    return build_servable(card, buffer.getvalue(), torch.device("cpu")), events[-1]["metrics"]


@pytest.mark.slow
def test_station_days_to_catalog_meets_the_figures(network, weed_store) -> None:
    picker, metrics = trained_picker()
    assert metrics["p_recall"] >= 0.9 and metrics["s_recall"] >= 0.8, metrics
    _upload_tree(weed_store, network.sds_root, "archives/e2e")
    archive = Archive.object_sds(weed_store, "archives/e2e")
    inventory = read_inventory(path=network.inventory_path)
    plan = plan_station_days(archive, Selection(channel="HH?"), network.start, network.end, margin_s=60,
                             inventory=inventory)
    assert len(plan.tasks) == 15 and plan.missing == ["XN.N005.00.HH.2024.062"]

    records = [run_station_day(task, archive, picker, weed_store, "e2e") for task in plan.tasks]
    assert not any(r["skipped"] for r in records)
    assert sum(r["data_seconds"] for r in records) == pytest.approx(8 * 3600 - 1800, abs=1)
    again = [run_station_day(task, archive, picker, weed_store, "e2e") for task in plan.tasks]
    assert all(r["skipped"] for r in again)  # finished station-days are skipped on resume
    assert [r["picks"] for r in again] == [r["picks"] for r in records]

    magnitude, magnitude_metrics = trained_magnitude_model()
    print("station magnitude model (validation windows)", magnitude_metrics)
    result = build_catalog(weed_store, "e2e", plan, archive, magnitude_model=magnitude)
    assert result["missing_station_days"] == ["XN.N005.00.HH.2024.062"]
    quakeml = weed_store.get_bytes("catalogs/e2e/catalog.xml")
    catalog = obspy.read_events(io.BytesIO(quakeml))
    assert len(catalog) == result["events"] == len(result["catalog"])
    figures = evaluate_catalog(result["catalog"], read_reference(Path(network.catalog_path).read_bytes()),
                               time_tolerance_s=2.0, distance_tolerance_km=10.0)
    print("catalog figures", figures)
    assert figures["recall"] >= 0.9 and figures["precision"] >= 0.9, figures
    assert figures["origin_time_error_median_s"] <= 0.5 and figures["epicentral_error_median_km"] <= 5.0, figures
    assert figures["magnitude_matched"] == figures["matched"] and figures["magnitude_rmse"] <= 0.3, figures
    assert all(e.magnitude_count >= 6 and e.magnitude_spread is not None for e in result["catalog"])
    assert all(len(e.station_magnitudes) == e.preferred_magnitude().station_count for e in catalog)
    at_midnight = [e for e in result["catalog"] if abs(e.origin_time - MIDNIGHT_EVENT.timestamp) <= 2.0]
    assert len(at_midnight) == 1
    assert {p.station for p, _ in at_midnight[0].picks} >= {"XN.N000.00", "XN.N001.00"}
    assert os.path.basename(network.catalog_path) == "truth.xml"


def test_a_model_that_cannot_pick_is_refused() -> None:
    model, hp, _ = build_model("convnetquake_ingv", {"n_samples": 1000})
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    card = model_card("convnetquake_ingv", hp, dataset="x", source={"job_id": "x", "epoch": 1})
    with pytest.raises(InvalidArgument, match="a magnitude model cannot pick or detect"):
        check_picker(build_servable(card, buffer.getvalue(), torch.device("cpu")))
    assert np.isfinite(0.0)
