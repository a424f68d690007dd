"""Every architecture of the zoo trains one epoch through the training loop on real shards."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from quakestack.models.zoo import ARCHITECTURES, build_model, get_architecture, resolve_training_hparams
from quakestack.training.data import check_compatible, load_split
from quakestack.training.loop import FixedEpochs, run_training
from tests.datasets import _built
from tests.models.test_zoo_architectures import TINY_HPARAMS


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_one_epoch_with_finite_loss(name: str, tmp_path_factory) -> None:
    directory = Path(_built(str(tmp_path_factory.getbasetemp() / "tiny-datasets"), 48, 24, 5, 60.0))
    manifest = json.loads((directory / "manifest.json").read_text())
    spec = get_architecture(name)
    model, arch_hp, input_spec = build_model(name, TINY_HPARAMS[name])
    check_compatible(spec, input_spec, manifest)
    splits = {s: load_split([directory / sh["key"] for sh in manifest["shards"] if sh["split"] == s], spec,
                            input_spec, manifest, "none") for s in ("train", "val")}
    events, checkpoints = [], []
    result = run_training(model=model, spec=spec, arch_hparams=arch_hp,
                          hp=resolve_training_hparams({"batch_size": 16}), train=splits["train"], val=splits["val"],
                          device=torch.device("cpu"), control=FixedEpochs(1), emit=events.append,
                          save_checkpoint=lambda label, state: checkpoints.append(label))
    assert result.state == "succeeded" and result.epochs_done == 1
    assert checkpoints == ["epoch-0001"]
    assert math.isfinite(events[0]["train_loss"]) and math.isfinite(events[0]["val_loss"])
    assert events[0]["metrics"], "the task's metrics are reported"
