"""Evaluation of trained weights on a dataset split: the task's metrics and PNG plots.

Plots are what a seismologist looks at first: true versus predicted magnitude with the 1:1 line
and the residual histogram; a confusion matrix for classifiers and detectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from quakestack.data.manifest import load_manifest
from quakestack.errors import FailedPrecondition
from quakestack.figures import figure_png
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.models.spec import Task
from quakestack.models.zoo import build_model, get_architecture
from quakestack.storage import ObjectStore
from quakestack.training.benchmark_tasks import benchmark_plots, benchmark_tasks
from quakestack.training.data import check_compatible, fetch_split, load_split
from quakestack.training.loop import Batches, evaluate


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    windows: int
    manifest_sha256: str
    plots: dict[str, bytes] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    targets: dict[str, np.ndarray] = field(default_factory=dict)


def evaluate_weights(store: ObjectStore, catalog: DatasetCatalog, cache_dir: Path, *, architecture: str,
                     hyper_parameters: dict[str, Any], weights: dict[str, torch.Tensor], dataset: str, split: str,
                     batch_size: int = 128, device: str = "cpu") -> Evaluation:
    model, arch_hp, input_spec = build_model(architecture, hyper_parameters)
    model.load_state_dict(weights)
    spec = get_architecture(architecture)
    manifest, manifest_sha = load_manifest(store, catalog, dataset)
    check_compatible(spec, input_spec, manifest)
    if not manifest.get("splits", {}).get(split, {}).get("count"):
        raise FailedPrecondition(f"dataset {dataset!r} has no windows in split {split!r}")
    dirs = fetch_split(store, dataset, manifest, split, cache_dir, manifest_sha)
    data = load_split(dirs, spec, input_spec, manifest, manifest.get("normalization", "none"))
    torch_device = torch.device(device)
    model.to(torch_device)
    _, metrics, predictions = evaluate(model, spec, spec.loss_for(arch_hp), Batches(data, torch_device),
                                       batch_size, amp=False)
    result = Evaluation(metrics=metrics, windows=len(data), manifest_sha256=manifest_sha, predictions=predictions,
                        targets=data.targets)
    title = f"{architecture} on {dataset}/{split}"
    result.plots = plots(spec.task, predictions, data.targets, list(spec.class_names), title=title)
    if spec.task is Task.PICKING and len(data):  # the benchmark tasks (Münchmeyer et al. 2022), every picker alike
        args = (predictions["sequence"], data.targets["p_sample"], data.targets["s_sample"],
                input_spec.sampling_rate)
        result.metrics.update(benchmark_tasks(*args))
        result.plots.update(benchmark_plots(*args, title=title))
    return result


def plots(task: Task, predictions: dict[str, np.ndarray], targets: dict[str, np.ndarray], class_names: list[str],
          title: str) -> dict[str, bytes]:
    import matplotlib.pyplot as plt

    if task is Task.MAGNITUDE:
        true, pred = targets["magnitude"], predictions["magnitude"]
        keep = np.isfinite(true) & np.isfinite(pred)
        true, pred = true[keep], pred[keep]
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(true, pred, s=6, alpha=0.5)
        lo, hi = (float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))) if len(true) else (0, 1)
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlabel("true magnitude")
        ax.set_ylabel("predicted magnitude")
        ax.set_title(title)
        scatter = figure_png(fig)
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.hist(pred - true, bins=40)
        ax.set_xlabel("residual (predicted - true)")
        ax.set_ylabel("windows")
        ax.set_title(title)
        return {"true_vs_predicted.png": scatter, "residuals.png": figure_png(fig)}
    if task is Task.PICKING:
        return {"pick_residuals.png": _pick_residual_plot(predictions["sequence"], targets, title)}
    labels = targets["label"]
    predicted = predictions["logits"].argmax(axis=-1)
    k = max(len(class_names), int(max(labels.max(initial=0), predicted.max(initial=0))) + 1)
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (labels, predicted), 1)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    names = class_names or [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=45)
    ax.set_yticks(range(k), names)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return {"confusion_matrix.png": figure_png(fig)}


def _pick_residual_plot(sequence: np.ndarray, targets: dict[str, np.ndarray], title: str) -> bytes:
    """Histograms of pick - label (samples) per phase, for windows with a label and a pick above 0.3."""
    import matplotlib.pyplot as plt

    from quakestack.models.metrics import PICK_THRESHOLD

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    for k, (ax, phase, key) in enumerate(zip(axes, "PS", ("p_sample", "s_sample"), strict=True)):
        label = np.asarray(targets[key], dtype=np.float64)
        keep = np.isfinite(label) & (sequence[:, k].max(axis=-1) >= PICK_THRESHOLD)
        ax.hist(sequence[keep, k].argmax(axis=-1) - label[keep], bins=np.arange(-100, 101, 5))
        ax.set_xlabel(f"{phase} residual (samples)")
        ax.set_ylabel("windows")
        ax.set_title(f"{title} {phase}")
    return figure_png(fig)
