"""The demo's magnitude model trained in-process at a given torch thread count, as its training job trains it:
the demo's STEAD data and splits, its architecture and hyper-parameters, the training loop, the best
validation epoch evaluated on the test split. Run as `python -m tests.demo_magnitude THREADS DIR`; prints
{"rmse", "r2"} as JSON. (The same data through the data service gives the same windows: same seed, same
pipeline.)"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import torch

from quakestack.cli.demo import FULL, magnitude_training
from quakestack.data.pipeline import DatasetSpec, SourceSpec, run_dataset
from quakestack.data.split import SplitSpec
from quakestack.data.synthetic import write_stead
from quakestack.data.windows import WindowSpec
from quakestack.models.spec import resolve_params
from quakestack.models.zoo import build_model, get_architecture
from quakestack.training.data import SplitData, load_split
from quakestack.training.jobs import JOB_HYPER_PARAMETERS
from quakestack.training.loop import Batches, FixedEpochs, evaluate, run_training, seed_everything


def demo_dataset(root: Path) -> tuple[Path, dict]:
    """The demo's STEAD dataset (600 events, 60 noise records, seed 1; split 0.7/0.15/0.15), built once."""
    directory = root / "dataset"
    if not (directory / "manifest.json").exists():
        pairs = write_stead(str(root / "raw"), n_events=FULL.stead_events, n_noise=FULL.stead_noise, seed=1)
        run_dataset(DatasetSpec(name="demo-stead", sources=[SourceSpec("stead", [h for h, _ in pairs],
                                                                        [c for _, c in pairs])],
                                window=WindowSpec(length_s=60.0), split=SplitSpec(0.7, 0.15, 0.15), shard_size=256,
                                seed=1), str(directory))
    return directory, json.loads((directory / "manifest.json").read_text())


def train_and_test(root: Path) -> dict[str, float]:
    architecture, values = magnitude_training(gpu=False, epochs=FULL.magnitude_epochs)
    spec = get_architecture(architecture)
    hp = resolve_params(JOB_HYPER_PARAMETERS, {k: v for k, v in values.items() if k != "n_samples"}, what="hp")
    seed_everything(int(hp["seed"]))
    model, arch_hp, _ = build_model(architecture, {"n_samples": values["n_samples"]})
    directory, manifest = demo_dataset(root)

    def split(name: str) -> SplitData:
        dirs = sorted({directory / Path(info["key"]).parent for shard in manifest["shards"] if shard["split"] == name
                       for info in shard["files"].values()})
        return load_split(dirs, spec, spec.input_spec_for(arch_hp), manifest, manifest.get("normalization", "none"))

    best: dict = {}

    def keep_best(_label: str, state: dict) -> None:
        event = state.get("event") or {}
        if event and event.get("best_epoch") == event.get("epoch"):
            best["weights"] = copy.deepcopy(model.state_dict())

    cpu = torch.device("cpu")
    run_training(model=model, spec=spec, arch_hparams=arch_hp, hp=hp, train=split("train"), val=split("val"),
                 device=cpu, control=FixedEpochs(int(hp["epochs"])), emit=lambda _e: None, save_checkpoint=keep_best)
    model.load_state_dict(best["weights"])
    _, metrics, _ = evaluate(model, spec, spec.loss_for(arch_hp), Batches(split("test"), cpu), 64, False)
    return {"rmse": float(metrics["rmse"]), "r2": float(metrics["r2"])}


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[1]))
    print(json.dumps(train_and_test(Path(sys.argv[2]))))
