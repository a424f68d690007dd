"""SeisBench's own training pipeline, as its documentation and training examples write it, on a quakestack split.

The split's windows (as the trainer loads them) are written as a SeisBench dataset with its
``WaveformDataWriter``; training reads them back through ``WaveformDataset`` → ``GenericGenerator`` with the
examples' augmentations (a fixed window, ``Normalize``, ``ChangeDtype``, ``ProbabilisticLabeller``) and a
torch ``DataLoader``, and trains with the examples' loss (cross-entropy of the softmax output against the
probabilistic labels). It is both the "pretrained" model of the fine-tuning tests and the reference the
trainer's fine-tuning throughput is compared with in ``bench/finetune.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from quakestack.data.manifest import load_manifest
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.models.zoo import build_model, get_architecture
from quakestack.storage import ObjectStore
from quakestack.training.data import fetch_split, load_split

PHASES = {"trace_p_arrival_sample": "P", "trace_s_arrival_sample": "S"}


def write_split(store: ObjectStore, catalog: DatasetCatalog, dataset: str, split: str, cache: Path,
                out: Path, n_samples: int = 3001) -> Path:
    """The split's windows and P/S samples as a SeisBench dataset (metadata.csv + waveforms.hdf5) in ``out``."""
    import seisbench.data as sbd

    architecture = get_architecture("seisbench_phasenet")
    manifest, sha = load_manifest(store, catalog, dataset)
    data = load_split(fetch_split(store, dataset, manifest, split, cache, sha), architecture,
                      architecture.input_spec_for({}), manifest, "none")
    out.mkdir(parents=True, exist_ok=True)
    with sbd.WaveformDataWriter(out / "metadata.csv", out / "waveforms.hdf5") as writer:
        writer.data_format = {"dimension_order": "CW", "component_order": "ZNE", "sampling_rate": 100,
                              "measurement": "velocity", "unit": "counts", "instrument_response": "not restituted"}
        for i in range(len(data)):
            meta = {"trace_name": f"{split}_{i}", "trace_sampling_rate_hz": float(manifest["sampling_rate"])}
            for column, key in (("trace_p_arrival_sample", "p_sample"), ("trace_s_arrival_sample", "s_sample")):
                value = float(data.targets[key][i])
                meta[column] = value if np.isfinite(value) else np.nan
            writer.add_trace(meta, data.x[i, :, :n_samples])
    return out


def generator(path: Path, n_samples: int = 3001, sigma: int = 10, model_labels: str = "NPS"):
    """SeisBench's generator pipeline over a dataset folder: window, normalise, labels in the model's order."""
    import seisbench.data as sbd
    import seisbench.generate as sbg

    data = sbd.WaveformDataset(path, sampling_rate=100, component_order="ZNE", dimension_order="NCW",
                               cache="full")
    gen = sbg.GenericGenerator(data)
    gen.add_augmentations([
        sbg.FixedWindow(p0=0, windowlen=n_samples, strategy="pad"),
        sbg.Normalize(demean_axis=-1, amp_norm_axis=-1, amp_norm_type="std"),
        sbg.ChangeDtype(np.float32),
        sbg.ProbabilisticLabeller(label_columns=PHASES, model_labels=model_labels, sigma=sigma, dim=0),
    ])
    return gen


def loss_fn(y_pred: torch.Tensor, y_true: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """SeisBench's PhaseNet example loss: cross-entropy of the probabilities against the labels."""
    h = y_true * torch.log(y_pred + eps)
    return -h.mean(-1).sum(-1).mean()


@dataclass
class FitResult:
    windows_per_s: list[float]  # per epoch, training steps only (as the trainer's samples_per_s)
    wall_s: float


def fit(model: torch.nn.Module, path: Path, *, epochs: int, batch_size: int = 32, lr: float = 1e-3,
        workers: int = 0, seed: int = 0) -> FitResult:
    """SeisBench's training loop (its examples' `train_loop`): model(batch["X"]) → loss → step."""
    from torch.utils.data import DataLoader

    torch.manual_seed(seed)
    gen = generator(path, int(model.in_samples), model_labels="".join(model.labels))
    loader = DataLoader(gen, batch_size=batch_size, shuffle=True, num_workers=workers,
                        worker_init_fn=lambda wid: np.random.seed(seed + wid),
                        generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rates, started = [], time.monotonic()
    model.train()
    for _ in range(epochs):
        seen, spent, t0 = 0, 0.0, time.perf_counter()
        for batch in loader:  # loading counts: the service's figure includes slicing its in-memory batches
            prediction = model(batch["X"])
            loss = loss_fn(prediction, batch["y"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += int(batch["X"].shape[0])
        spent = time.perf_counter() - t0
        rates.append(seen / max(spent, 1e-9))
    model.eval()
    return FitResult(rates, time.monotonic() - started)


def plain_phasenet(seed: int = 0) -> torch.nn.Module:
    """A fresh SeisBench PhaseNet (default model_args), seeded."""
    import seisbench.models as sbm

    torch.manual_seed(seed)
    return sbm.PhaseNet()


def as_zoo_phasenet(model: torch.nn.Module) -> torch.nn.Module:
    """The same weights in the zoo's trainable class (for evaluating with the trainer's code in-process)."""
    zoo, _, _ = build_model("seisbench_phasenet", {})
    zoo.load_state_dict(model.state_dict())
    return zoo.eval()
