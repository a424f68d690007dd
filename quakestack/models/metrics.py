"""Evaluation metrics per task, computed with numpy from predictions accumulated over an epoch.

magnitude: RMSE, MAE, R² (coefficient of determination), residual mean and std (residual = true - pred).
detection / classification: accuracy, precision, recall, F1 (macro and per class), confusion matrix
(rows = true class, columns = predicted class). Precision of a class never predicted is 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from quakestack.models.spec import DETECTION_CLASSES, EVENT_CLASSES, Task

IGNORE_INDEX = -100


def regression_metrics(pred: np.ndarray, true: np.ndarray, log_var: np.ndarray | None = None) -> dict[str, float]:
    """Magnitude metrics over rows with a finite target."""
    pred, true = (
        np.asarray(pred, dtype=np.float64).reshape(-1),
        np.asarray(true, dtype=np.float64).reshape(-1),
    )
    mask = np.isfinite(true)
    pred, true = pred[mask], true[mask]
    n = int(true.size)
    if n == 0:
        return {"n": 0}
    residual = true - pred
    ss_res = float(np.sum(residual**2))
    ss_tot = float(np.sum((true - true.mean()) ** 2))
    out = {
        "n": n,
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "mae": float(np.mean(np.abs(residual))),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
        "residual_mean": float(residual.mean()),
        "residual_std": float(residual.std()),
    }
    if log_var is not None:
        sigma = np.exp(0.5 * np.asarray(log_var, dtype=np.float64).reshape(-1)[mask])
        out["mean_sigma"] = float(sigma.mean())
    return out


def confusion_matrix(pred: np.ndarray, true: np.ndarray, n_classes: int) -> np.ndarray:
    """[n_classes, n_classes] counts, rows = true, columns = predicted; ignored labels are dropped."""
    pred, true = np.asarray(pred).reshape(-1).astype(np.int64), np.asarray(true).reshape(-1).astype(np.int64)
    keep = (true >= 0) & (true < n_classes)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (true[keep], np.clip(pred[keep], 0, n_classes - 1)), 1)
    return cm


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def classification_metrics(pred: np.ndarray, true: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro and per-class precision / recall / F1 and the confusion matrix."""
    n_classes = len(class_names)
    cm = confusion_matrix(pred, true, n_classes)
    tp = np.diag(cm).astype(np.float64)
    precision = _safe_div(tp, cm.sum(axis=0).astype(np.float64))
    recall = _safe_div(tp, cm.sum(axis=1).astype(np.float64))
    f1 = _safe_div(2 * precision * recall, precision + recall)
    total = cm.sum()
    return {
        "n": int(total),
        "accuracy": float(tp.sum() / total) if total else float("nan"),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
        "precision_per_class": precision.tolist(),
        "recall_per_class": recall.tolist(),
        "f1_per_class": f1.tolist(),
        "support_per_class": cm.sum(axis=1).tolist(),
        "confusion_matrix": cm.tolist(),
        "class_names": list(class_names),
    }


def detection_metrics(
    pred: np.ndarray,
    true: np.ndarray,
    cluster_pred: np.ndarray | None = None,
    cluster_true: np.ndarray | None = None,
) -> dict[str, Any]:
    """Event-vs-noise metrics with "event" (class 1) as the positive class, cluster accuracy."""
    out = classification_metrics(pred, true, DETECTION_CLASSES)
    event = DETECTION_CLASSES.index("event")
    out["precision"] = out["precision_per_class"][event]
    out["recall"] = out["recall_per_class"][event]
    out["f1"] = out["f1_per_class"][event]
    if cluster_pred is not None and cluster_true is not None:
        cluster_true = np.asarray(cluster_true).reshape(-1)
        keep = cluster_true != IGNORE_INDEX
        if keep.any():
            out["cluster_accuracy"] = float(np.mean(np.asarray(cluster_pred).reshape(-1)[keep] == cluster_true[keep]))
    return out


PICK_TOLERANCE_SAMPLES = 50  # 0.5 s at 100 Hz
PICK_THRESHOLD = 0.3  # serving's default pick threshold (SeisBench's)


def pick_metrics(sequence: np.ndarray, p_sample: np.ndarray, s_sample: np.ndarray,
                 tolerance: float = PICK_TOLERANCE_SAMPLES, threshold: float = PICK_THRESHOLD) -> dict[str, float]:
    """Per phase, one pick per window (the probability peak, if above ``threshold``) against the label.

    A pick within ``tolerance`` samples of the labelled sample is a true positive; any other pick is a
    false positive; a label without a true positive is a false negative. Residuals (pick - label, in
    samples) are over the true positives.
    """
    sequence = np.asarray(sequence, dtype=np.float32)
    out: dict[str, float] = {"n": int(sequence.shape[0])}
    length = sequence.shape[-1]
    f1s = []
    for k, (name, label) in enumerate((("p", p_sample), ("s", s_sample))):
        label = np.asarray(label, dtype=np.float64).reshape(-1)
        has = np.isfinite(label) & (label >= 0) & (label < length)
        peak = sequence[:, k].argmax(axis=-1).astype(np.float64)
        picked = sequence[:, k].max(axis=-1) >= threshold
        residual = peak - label
        tp = picked & has & (np.abs(np.nan_to_num(residual, nan=np.inf)) <= tolerance)
        n_tp, n_fp, n_fn = int(tp.sum()), int((picked & ~tp).sum()), int((has & ~tp).sum())
        precision = n_tp / (n_tp + n_fp) if n_tp + n_fp else 0.0
        recall = n_tp / (n_tp + n_fn) if n_tp + n_fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        out.update({f"{name}_precision": precision, f"{name}_recall": recall, f"{name}_f1": f1,
                    f"{name}_residual_mean": float(residual[tp].mean()) if n_tp else float("nan"),
                    f"{name}_residual_std": float(residual[tp].std()) if n_tp else float("nan")})
    out["f1"] = float(np.mean(f1s))
    return out


def _labels(predictions: Mapping[str, np.ndarray], key: str = "logits") -> np.ndarray:
    if key in predictions:
        return np.asarray(predictions[key]).argmax(axis=-1)
    return np.asarray(predictions["label"])


def compute_metrics(
    task: Task | str,
    predictions: Mapping[str, np.ndarray],
    targets: Mapping[str, np.ndarray],
    class_names: Sequence[str] | None = None,
) -> dict[str, float | list]:
    """Metrics for ``task`` from whole-epoch predictions (model output keys) and targets (target keys).

    Classification predictions may be ``logits`` [N, K] or ``label`` [N]; targets carry ``label`` [N].
    """
    task = Task(task)
    if task is Task.PICKING:
        return pick_metrics(predictions["sequence"], targets["p_sample"], targets["s_sample"])
    if task is Task.MAGNITUDE:
        return regression_metrics(predictions["magnitude"], targets["magnitude"], predictions.get("magnitude_log_var"))
    if task is Task.DETECTION:
        cluster_pred = _labels(predictions, "cluster_logits") if "cluster_logits" in predictions else None
        return detection_metrics(_labels(predictions), targets["label"], cluster_pred, targets.get("cluster"))
    return classification_metrics(_labels(predictions), targets["label"], class_names or EVENT_CLASSES)


class MetricAccumulator:
    """Collects batch outputs and targets (detached, on CPU) and computes the epoch's metrics."""

    def __init__(self, task: Task | str, class_names: Sequence[str] | None = None) -> None:
        self.task, self.class_names = Task(task), class_names
        self.reset()

    def reset(self) -> None:
        self._pred: dict[str, list[np.ndarray]] = {}
        self._true: dict[str, list[np.ndarray]] = {}

    def update(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> None:
        for store, values in ((self._pred, outputs), (self._true, targets)):
            for key, value in values.items():
                if isinstance(value, Tensor):
                    store.setdefault(key, []).append(
                        value.detach().float().cpu().numpy()
                        if value.is_floating_point()
                        else value.detach().cpu().numpy()
                    )

    def __len__(self) -> int:
        first = next(iter(self._true.values()), [])
        return int(sum(len(a) for a in first))

    def compute(self) -> dict[str, float | list]:
        pred = {k: np.concatenate(v) for k, v in self._pred.items()}
        true = {k: np.concatenate(v) for k, v in self._true.items()}
        return compute_metrics(self.task, pred, true, self.class_names)


def to_numpy(outputs: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
    """Detach a model's output dict into numpy arrays (for inference responses)."""
    return {k: v.detach().float().cpu().numpy() for k, v in outputs.items() if isinstance(v, torch.Tensor)}
