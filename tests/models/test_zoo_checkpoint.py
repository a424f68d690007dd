"""Checkpoints: plain state dicts, round trip with weights_only=True, code-executing pickles refused."""

from __future__ import annotations

import io
import pickle
import random

import numpy as np
import pytest
import torch

from quakestack.models import build_model
from quakestack.models.checkpoint import (
    load_state,
    restore_training_state,
    save_state,
    state_to_bytes,
    training_state,
)

_SIDE_EFFECTS: list[str] = []


def _record(message: str) -> None:
    _SIDE_EFFECTS.append(message)


class _Evil:
    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (_record, ("code ran",))


def test_model_round_trip(tmp_path) -> None:
    model, _, _ = build_model("convnetquake", {"channels": 4})
    path = tmp_path / "model.pt"
    save_state(path, {"model": model.state_dict(), "architecture": "convnetquake", "hparams": {"channels": 4}})
    state = load_state(path)
    clone, _, _ = build_model("convnetquake", state["hparams"])
    clone.load_state_dict(state["model"])
    for (k, a), (_, b) in zip(model.state_dict().items(), clone.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    assert not list(tmp_path.glob("*.tmp"))


def test_checkpoint_is_loadable_by_plain_torch_weights_only() -> None:
    model, _, _ = build_model("magnet", {"conv1_channels": 2, "conv2_channels": 2, "lstm_hidden": 2})
    data = state_to_bytes(
        {"model": model.state_dict(), "metrics": {"rmse": np.float64(0.2)}, "mean": np.zeros(3, dtype=np.float32)}
    )
    state = torch.load(io.BytesIO(data), weights_only=True)
    assert state["metrics"]["rmse"] == pytest.approx(0.2)
    assert isinstance(state["mean"], torch.Tensor)


def test_code_executing_pickle_is_refused(tmp_path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": _Evil()}, path)  # torch.save pickles whatever it is given
    _SIDE_EFFECTS.clear()
    with pytest.raises(pickle.UnpicklingError):
        load_state(path)
    raw = pickle.dumps(_Evil())
    with pytest.raises(pickle.UnpicklingError):
        load_state(raw)
    assert _SIDE_EFFECTS == []


def test_save_refuses_what_weights_only_could_not_load() -> None:
    with pytest.raises(TypeError, match=r"state.payload has type _Evil"):
        save_state(io.BytesIO(), {"payload": _Evil()})


def test_training_state_resumes_model_optimizer_scheduler_and_rng() -> None:
    model, _, _ = build_model("convnetquake", {"channels": 4})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    x = torch.randn(4, 3, 1000)
    loss = model(x)["logits"].sum()
    loss.backward()
    optimizer.step()
    scheduler.step()
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    blob = state_to_bytes(training_state(model, optimizer, scheduler, epoch=3, best_metric=0.5))
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])

    state = load_state(blob)
    model2, _, _ = build_model("convnetquake", {"channels": 4})
    optimizer2 = torch.optim.AdamW(model2.parameters(), lr=1e-3)
    scheduler2 = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer2, T_max=10)
    torch.manual_seed(0)
    epoch = restore_training_state(state, model2, optimizer2, scheduler2)
    assert epoch == 3 and state["best_metric"] == 0.5
    assert scheduler2.last_epoch == 1
    assert optimizer2.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert [random.random() for _ in range(3)] == expected[2]
    with torch.no_grad():
        assert torch.equal(model(x)["logits"], model2(x)["logits"])
