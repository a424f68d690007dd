"""The three benchmark tasks of Münchmeyer et al. (2022), "Which picker fits my data?", on a split's windows.

Computed from any picker's per-sample probabilities in the zoo's order (P, S, noise) and the labelled onsets,
so a zoo PhaseNet, a SeisBench PhaseNet and an EQTransformer (noise = 1 - detection) are scored alike and the
figures compare with the paper's tables:

1. event detection: a window's score is the maximum of 1 - noise over it; ROC AUC, and the Matthews
   correlation coefficient (MCC) at the threshold that maximises it;
2. phase identification: at each labelled onset (the highest probabilities within +-0.1 s of it), P if P's
   probability is the larger, else S; MCC of P against S;
3. onset regression: residual = the phase's probability peak in the window - the labelled onset, in seconds:
   mean, std, MAE and the fraction within 0.1 s and 0.5 s, per phase and both phases together.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PHASE_WINDOW_S = 0.1  # +- around a labelled onset where phase identification reads the probabilities
TOLERANCES_S = (0.1, 0.5)


def mcc(tp: float, fp: float, tn: float, fn: float) -> float:
    """Matthews correlation coefficient; 0 when a margin is empty (no information either way)."""
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator > 0 else 0.0


def roc(score: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold (descending), and those thresholds."""
    order = np.argsort(-score, kind="mergesort")
    score, label = score[order], label[order].astype(bool)
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]  # the last index of each distinct score
    tps = np.cumsum(label)[last]
    fps = (last + 1) - tps
    positives, negatives = max(int(label.sum()), 1), max(int((~label).sum()), 1)
    return np.r_[0.0, fps / negatives], np.r_[0.0, tps / positives], np.r_[np.inf, score[last]]


def detection(score: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """ROC AUC, best MCC and its threshold of window scores against event (1) / noise (0) labels."""
    label = label.astype(bool)
    if label.all() or not label.any():
        return {"detection_windows": float(len(label))}  # one class only: neither AUC nor MCC is defined
    fpr, tpr, thresholds = roc(score, label)
    auc = float(np.trapezoid(tpr, fpr))
    p, n = float(label.sum()), float((~label).sum())
    tp, fp = tpr * p, fpr * n
    values = np.array([mcc(a, b, n - b, p - a) for a, b in zip(tp, fp, strict=True)])
    best = int(np.argmax(values))
    return {"detection_auc": auc, "detection_mcc": float(values[best]),
            "detection_threshold": float(min(thresholds[best], 1.0)), "detection_windows": float(len(label))}


def _near(trace: np.ndarray, onset: np.ndarray, half: int) -> np.ndarray:
    """Max of each row of ``trace`` within +-half samples of that row's onset."""
    length = trace.shape[-1]
    offsets = np.arange(-half, half + 1)
    index = np.clip(onset[:, None].astype(int) + offsets[None, :], 0, length - 1)
    return np.take_along_axis(trace, index, axis=1).max(axis=1)


def _in_window(sample: np.ndarray, length: int) -> np.ndarray:
    return np.isfinite(sample) & (sample >= 0) & (sample < length)


def phase_identification(sequence: np.ndarray, p_sample: np.ndarray, s_sample: np.ndarray,
                         sampling_rate: float) -> dict[str, float]:
    """MCC of P against S at every labelled onset in a window, from the larger of the two probabilities."""
    half = max(1, int(round(PHASE_WINDOW_S * sampling_rate)))
    true, predicted = [], []
    for k, sample in enumerate((p_sample, s_sample)):
        keep = _in_window(sample, sequence.shape[-1])
        if not keep.any():
            continue
        p = _near(sequence[keep, 0], sample[keep], half)
        s = _near(sequence[keep, 1], sample[keep], half)
        true.append(np.full(int(keep.sum()), k == 0))
        predicted.append(p >= s)
    if not true:
        return {}
    t, q = np.concatenate(true), np.concatenate(predicted)
    tp, fp = float(np.sum(t & q)), float(np.sum(~t & q))
    tn, fn = float(np.sum(~t & ~q)), float(np.sum(t & ~q))
    return {"phase_mcc": mcc(tp, fp, tn, fn), "phase_accuracy": float(np.mean(t == q)), "phase_onsets": float(len(t))}


def onset_residuals(sequence: np.ndarray, p_sample: np.ndarray, s_sample: np.ndarray,
                    sampling_rate: float) -> dict[str, np.ndarray]:
    """Per phase, the peak of its probability minus the labelled onset, in seconds, for windows with the label."""
    out = {}
    for k, (phase, sample) in enumerate((("p", p_sample), ("s", s_sample))):
        keep = _in_window(sample, sequence.shape[-1])
        out[phase] = (sequence[keep, k].argmax(axis=-1) - sample[keep]) / sampling_rate
    return out


def residual_stats(residual: np.ndarray, prefix: str) -> dict[str, float]:
    if not len(residual):
        return {}
    out = {f"{prefix}onset_mean_s": float(residual.mean()), f"{prefix}onset_std_s": float(residual.std()),
           f"{prefix}onset_mae_s": float(np.abs(residual).mean())}
    for tolerance in TOLERANCES_S:
        out[f"{prefix}onset_within_{tolerance:g}s".replace(".", "_")] = float(np.mean(np.abs(residual) <= tolerance))
    return out


def benchmark_tasks(sequence: np.ndarray, p_sample: np.ndarray, s_sample: np.ndarray,
                    sampling_rate: float) -> dict[str, float]:
    """The three tasks' figures for ``sequence`` [N, 3, L] (P, S, noise) and onsets in samples (NaN: none)."""
    sequence = np.asarray(sequence, dtype=np.float32)
    p_sample, s_sample = np.asarray(p_sample, np.float64), np.asarray(s_sample, np.float64)
    length = sequence.shape[-1]
    event = _in_window(p_sample, length) | _in_window(s_sample, length)
    out: dict[str, float] = {}
    out.update(detection((1.0 - sequence[:, 2]).max(axis=-1), event))
    out.update(phase_identification(sequence, p_sample, s_sample, sampling_rate))
    residuals = onset_residuals(sequence, p_sample, s_sample, sampling_rate)
    out.update(residual_stats(residuals["p"], "p_"))
    out.update(residual_stats(residuals["s"], "s_"))
    out.update(residual_stats(np.concatenate([residuals["p"], residuals["s"]]), ""))
    return out


def benchmark_plots(sequence: np.ndarray, p_sample: np.ndarray, s_sample: np.ndarray, sampling_rate: float,
                    title: str) -> dict[str, bytes]:
    """The detection ROC curve and the onset residual histograms (seconds), as PNG."""
    import matplotlib.pyplot as plt

    from quakestack.figures import figure_png

    length = sequence.shape[-1]
    event = _in_window(p_sample, length) | _in_window(s_sample, length)
    out = {}
    if event.any() and not event.all():
        fpr, tpr, _ = roc((1.0 - sequence[:, 2]).max(axis=-1), event)
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(fpr, tpr, lw=1.5)
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"{title}: detection ROC")
        out["detection_roc.png"] = figure_png(fig)
    residuals = onset_residuals(sequence, p_sample, s_sample, sampling_rate)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
    for ax, phase in zip(axes, ("p", "s"), strict=True):
        ax.hist(np.clip(residuals[phase], -1.0, 1.0), bins=np.linspace(-1.0, 1.0, 41))
        ax.set_xlabel(f"{phase.upper()} onset residual (s, clipped to +-1)")
        ax.set_ylabel("onsets")
        ax.set_title(f"{title} {phase.upper()}")
    out["onset_residuals.png"] = figure_png(fig)
    return out


def as_row(metrics: dict[str, Any]) -> dict[str, float]:
    """The columns of a comparison table (the CLI's and the benchmark's)."""
    keys = ("detection_auc", "detection_mcc", "phase_mcc", "onset_mae_s", "p_onset_mae_s", "s_onset_mae_s",
            "p_onset_within_0_1s", "s_onset_within_0_1s")
    return {k: float(metrics[k]) for k in keys if k in metrics}
