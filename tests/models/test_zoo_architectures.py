"""Every architecture: builds from defaults, returns its declared outputs, and trains on CPU."""

from __future__ import annotations

import json

import pytest
import torch

from quakestack.models import ARCHITECTURES, Task, build_model, get_architecture
from quakestack.models.graph import GRAPH_LAYERS, batch_edge_index, temporal_edge_index
from quakestack.models.losses import get_loss
from quakestack.models.metrics import MetricAccumulator
from quakestack.models.throughput import random_batch

NAMES = sorted(ARCHITECTURES)
# Smallest sensible versions of each architecture (defaults are checked separately for shapes only).
TINY_HPARAMS: dict[str, dict] = {
    "magnet": {"n_samples": 3000, "conv1_channels": 4, "conv2_channels": 4, "lstm_hidden": 4},
    "eqgraphnet": {"n_samples": 3000, "n_conv_layers": 5, "base_channels": 4, "max_channels": 8},
    "maginfonet": {"n_samples": 3000, "width": 4, "n_blocks": 1, "info_hidden": 8, "pool_size": 20},
    "creime": {"conv1_channels": 4, "conv2_channels": 4, "conv3_channels": 4, "lstm1_units": 8, "lstm2_units": 8},
    "convnetquake_ingv": {"n_samples": 1000, "n_layers": 5, "channels": 8},
    "convnetquake": {"channels": 8, "n_clusters": 3},
    "event_classifier": {"n_samples": 3000, "width": 0.05, "fc_units": 16},
    "phasenet": {"n_samples": 1000, "base_channels": 4, "depth": 3},
    "seisbench_phasenet": {},  # SeisBench's PhaseNet has one size: 3001 samples
    "seisbench_eqtransformer": {"in_samples": 3000, "lstm_blocks": 1},
}


@pytest.fixture
def tiny_hparams() -> dict[str, dict]:
    torch.manual_seed(0)
    return {name: dict(hp) for name, hp in TINY_HPARAMS.items()}


EXPECTED = {
    "magnet",
    "eqgraphnet",
    "maginfonet",
    "creime",
    "convnetquake_ingv",
    "convnetquake",
    "event_classifier",
    "phasenet",
    "seisbench_phasenet",
    "seisbench_eqtransformer",
}


def _check_shapes(name: str, outputs: dict[str, torch.Tensor], batch: int, hparams: dict) -> None:
    spec = get_architecture(name)
    assert set(outputs) <= set(spec.outputs), f"{name} returned undeclared outputs"
    assert "magnitude" in outputs or "logits" in outputs or "sequence" in outputs
    for key, value in outputs.items():
        assert value.shape[0] == batch, key
        assert torch.isfinite(value).all(), key
        if key in ("magnitude", "magnitude_log_var", "event_score"):
            assert value.shape == (batch,)
        elif key == "logits":
            assert value.shape == (batch, len(spec.class_names))
        elif key == "cluster_logits":
            assert value.shape == (batch, hparams["n_clusters"])
        elif key in ("pick_logits", "sequence", "eqt_logits"):
            assert value.shape == (batch, 3, spec.input_spec_for(hparams).n_samples)
        elif key == "magnitude_trace":
            assert value.shape == (batch, hparams["n_samples"])


def test_registry_holds_the_seed_architectures(tiny_hparams: dict) -> None:
    assert set(ARCHITECTURES) == EXPECTED
    assert set(tiny_hparams) == EXPECTED
    for spec in ARCHITECTURES.values():
        json.dumps(spec.to_dict())  # describable over the API
        assert spec.reference and spec.labels_required
        if spec.task is not Task.MAGNITUDE:
            assert spec.class_names


@pytest.mark.parametrize("name", NAMES)
def test_defaults_build_and_give_declared_outputs(name: str) -> None:
    spec = get_architecture(name)
    model, hparams, input_spec = build_model(name)
    assert hparams == spec.default_hparams()
    assert input_spec.n_samples == hparams.get("n_samples", hparams.get("in_samples", spec.input_spec.n_samples))
    assert input_spec.components == "ZNE" and input_spec.sampling_rate == 100.0
    model.eval()
    x, extras, _ = random_batch(spec, input_spec, batch_size=2)
    with torch.no_grad():
        outputs = model(x, extras)
    _check_shapes(name, outputs, 2, hparams)
    if name == "magnet":  # default loss predicts the aleatoric variance
        assert "magnitude_log_var" in outputs


def test_default_input_specs() -> None:
    assert get_architecture("convnetquake").input_spec.n_samples == 1000  # 10 s at 100 Hz
    assert get_architecture("creime").input_spec.n_samples == 512
    assert get_architecture("magnet").input_spec.n_samples == 3000
    for name in ("eqgraphnet", "maginfonet", "convnetquake_ingv", "event_classifier"):
        assert get_architecture(name).input_spec.n_samples == 6000
    assert get_architecture("maginfonet").input_spec.extra_inputs == (
        "p_arrival_sample",
        "s_arrival_sample",
        "p_travel_s",
    )
    _, _, spec6000 = build_model("magnet", {"n_samples": 6000})
    assert spec6000.n_samples == 6000


@pytest.mark.parametrize("name", NAMES)
def test_one_epoch_on_tiny_random_data(name: str, tiny_hparams: dict) -> None:
    spec = get_architecture(name)
    model, hparams, input_spec = build_model(name, tiny_hparams[name])
    loss_fn = get_loss(spec.loss_for(hparams))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    accumulator = MetricAccumulator(spec.task, spec.class_names or None)
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    for _ in range(3):  # one epoch = 3 batches of 4 windows
        x, extras, targets = random_batch(spec, input_spec, batch_size=4)
        outputs = model(x, extras)
        _check_shapes(name, outputs, 4, hparams)
        loss = loss_fn(outputs, targets)
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        accumulator.update(outputs, targets)
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True))
    metrics = accumulator.compute()
    assert metrics["n"] == 12
    json.dumps(metrics)


@pytest.mark.parametrize("graph_layer", GRAPH_LAYERS)
def test_every_graph_layer_trains(graph_layer: str, tiny_hparams: dict) -> None:
    spec = get_architecture("eqgraphnet")
    hparams = {**tiny_hparams["eqgraphnet"], "n_conv_layers": 6, "graph_layer": graph_layer, "k_neighbours": 2}
    model, hparams, input_spec = build_model("eqgraphnet", hparams)
    x, extras, targets = random_batch(spec, input_spec, batch_size=3)
    loss = get_loss(spec.loss)(model(x, extras), targets)
    loss.backward()
    assert torch.isfinite(loss)


def test_temporal_edges_link_k_neighbours_within_each_sample() -> None:
    ei = temporal_edge_index(5, k=2)
    edges = set(map(tuple, ei.t().tolist()))
    assert edges == {(i, j) for i in range(5) for j in range(5) if 0 < abs(i - j) <= 2}
    batched = batch_edge_index(ei, n_nodes=5, batch_size=3)
    assert batched.shape == (2, 3 * ei.shape[1])
    assert ((batched // 5)[0] == (batched // 5)[1]).all()  # no edge crosses samples
    assert batched.max() == 14


def test_maginfonet_requires_its_extras_and_uses_them(tiny_hparams: dict) -> None:
    model, _, input_spec = build_model("maginfonet", tiny_hparams["maginfonet"])
    model.eval()
    x = torch.randn(2, 3, input_spec.n_samples)
    with pytest.raises(ValueError, match="p_arrival_sample"):
        model(x)
    extras = {
        "p_arrival_sample": torch.tensor([500.0, 800.0]),
        "s_arrival_sample": torch.tensor([900.0, 1500.0]),
        "p_travel_s": torch.tensor([5.0, 12.0]),
    }
    with torch.no_grad():
        a = model(x, extras)["magnitude"]
        b = model(x, {**extras, "p_travel_s": torch.tensor([50.0, 90.0])})["magnitude"]
        c = model(x, {**extras, "s_arrival_sample": torch.tensor([float("nan"), 1500.0])})["magnitude"]
    assert not torch.allclose(a, b)
    assert torch.isfinite(c).all()


def test_wrong_input_shape_is_reported_clearly() -> None:
    model, _, _ = build_model("convnetquake")
    with pytest.raises(ValueError, match=r"expects input \[B, 3, 1000\]"):
        model(torch.randn(2, 3, 6000))


def test_magnet_mse_variant_drops_the_variance(tiny_hparams: dict) -> None:
    model, hparams, _ = build_model("magnet", {**tiny_hparams["magnet"], "loss": "mse"})
    assert get_architecture("magnet").loss_for(hparams) == "mse"
    assert set(model(torch.randn(2, 3, 3000))) == {"magnitude"}
