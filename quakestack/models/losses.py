"""Training losses by name; an architecture spec names its loss and the trainer looks it up here.

Every loss takes the model's output dict and a target dict (see ``targets.py``) and returns a scalar.
Rows whose target is missing (NaN magnitude, label -100) are left out, so one batch can mix
earthquakes and noise windows.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE_INDEX = -100  # label / cluster value for "no target" (torch's cross-entropy default)
CREIME_NOISE_VALUE = -4.0  # CREIME's target value for samples before P and for noise windows

LossFn = Callable[[dict[str, Tensor], dict[str, Tensor]], Tensor]


def _zero(like: Tensor) -> Tensor:
    """A zero that still carries a graph, for batches without any usable target."""
    return like.sum() * 0.0


def _valid_magnitudes(outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    pred = outputs["magnitude"].reshape(-1)
    true = targets["magnitude"].to(pred).reshape(-1)
    mask = torch.isfinite(true)
    return pred, true, mask


def mse_loss(outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> Tensor:
    """Mean squared magnitude error over windows that have a magnitude."""
    pred, true, mask = _valid_magnitudes(outputs, targets)
    if not mask.any():
        return _zero(pred)
    return F.mse_loss(pred[mask], true[mask])


def gaussian_nll_loss(outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> Tensor:
    """MagNet's aleatoric loss: 0.5 * exp(-s) * (y - mu)^2 + 0.5 * s with s = predicted log-variance.

    Falls back to MSE for a model that predicts no log-variance.
    """
    if "magnitude_log_var" not in outputs:
        return mse_loss(outputs, targets)
    pred, true, mask = _valid_magnitudes(outputs, targets)
    if not mask.any():
        return _zero(pred) + _zero(outputs["magnitude_log_var"])
    log_var = outputs["magnitude_log_var"].reshape(-1)[mask].clamp(-20.0, 20.0)
    return (0.5 * torch.exp(-log_var) * (true[mask] - pred[mask]) ** 2 + 0.5 * log_var).mean()


def creime_trace_loss(outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> Tensor:
    """CREIME: MSE against a target trace that is -4 before the P arrival (and everywhere for noise)
    and the magnitude from the P arrival on. Without a trace output this is plain MSE."""
    if "magnitude_trace" not in outputs:
        return mse_loss(outputs, targets)
    trace = outputs["magnitude_trace"]
    b, n = trace.shape
    magnitude = targets["magnitude"].to(trace).reshape(-1)
    is_event = torch.isfinite(magnitude)
    p = targets.get("p_arrival_sample")
    p = torch.zeros(b, device=trace.device) if p is None else p.to(trace).reshape(-1)
    p = torch.where(torch.isfinite(p), p, torch.zeros_like(p)).clamp(0, n)
    after_p = torch.arange(n, device=trace.device)[None, :] >= p[:, None]
    target = torch.full_like(trace, CREIME_NOISE_VALUE)
    target = torch.where(after_p & is_event[:, None], torch.nan_to_num(magnitude)[:, None], target)
    return F.mse_loss(trace, target)


def cross_entropy_loss(outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> Tensor:
    """Cross-entropy over class logits; labels equal to -100 are ignored."""
    logits, labels = outputs["logits"], targets["label"].long().reshape(-1)
    if not (labels != IGNORE_INDEX).any():
        return _zero(logits)
    return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)


def detection_cluster_loss(outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> Tensor:
    """ConvNetQuake: event/noise cross-entropy plus cluster cross-entropy on events with a cluster."""
    loss = cross_entropy_loss(outputs, targets)
    if "cluster_logits" in outputs and "cluster" in targets:
        cluster = targets["cluster"].long().reshape(-1)
        if (cluster != IGNORE_INDEX).any():
            loss = loss + F.cross_entropy(outputs["cluster_logits"], cluster, ignore_index=IGNORE_INDEX)
        else:
            loss = loss + _zero(outputs["cluster_logits"])
    return loss


PICK_SIGMA_SAMPLES = 10.0  # width of the Gaussian P/S targets (SeisBench's default: 0.1 s at 100 Hz)


def pick_targets(p_sample: Tensor, s_sample: Tensor, length: int, sigma: float = PICK_SIGMA_SAMPLES) -> Tensor:
    """PhaseNet's soft labels [B, 3, L]: Gaussians at the P and S samples, noise = 1 - P - S (>= 0).

    A missing (NaN) or out-of-window sample gives no Gaussian: a noise window is all noise.
    """
    t = torch.arange(length, device=p_sample.device, dtype=torch.float32)[None, :]
    traces = []
    for sample in (p_sample, s_sample):
        sample = sample.float().reshape(-1, 1)
        present = torch.isfinite(sample) & (sample >= -3 * sigma) & (sample < length + 3 * sigma)
        g = torch.exp(-((t - torch.nan_to_num(sample, nan=-1e9)) ** 2) / (2 * sigma**2))
        traces.append(torch.where(present, g, torch.zeros_like(g)))
    noise = (1.0 - traces[0] - traces[1]).clamp_min(0.0)
    return torch.stack([traces[0], traces[1], noise], dim=1)


def pick_cross_entropy_loss(outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> Tensor:
    """Cross-entropy of the per-sample P/S/noise softmax against the Gaussian soft labels (PhaseNet)."""
    logits = outputs["pick_logits"]
    target = pick_targets(targets["p_sample"].to(logits.device), targets["s_sample"].to(logits.device),
                          logits.shape[-1])
    return -(target * torch.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


EQT_LOSS_WEIGHTS = (0.05, 0.40, 0.55)  # detection, P, S: SeisBench's EQTransformer training (pick-benchmark)
EQT_DETECTION_FACTOR = 1.4  # detection lasts from P to S + 1.4 (S - P), SeisBench's DetectionLabeller


def detection_targets(p_sample: Tensor, s_sample: Tensor, length: int,
                      factor: float = EQT_DETECTION_FACTOR) -> Tensor:
    """EQTransformer's detection label [B, L]: 1 from P to S + factor * (S - P), 0 elsewhere and for noise."""
    t = torch.arange(length, device=p_sample.device, dtype=torch.float32)[None, :]
    p, s = p_sample.float().reshape(-1, 1), s_sample.float().reshape(-1, 1)
    present = torch.isfinite(p) & torch.isfinite(s)
    p, s = torch.nan_to_num(p, nan=0.0), torch.nan_to_num(s, nan=0.0)
    inside = (t >= p) & (t <= s + factor * (s - p))
    return (inside & present).float()


def eqt_bce_loss(outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> Tensor:
    """EQTransformer: weighted binary cross-entropy of the detection, P and S traces (SeisBench's weights)."""
    logits = outputs["eqt_logits"].float()
    p, s = targets["p_sample"].to(logits.device), targets["s_sample"].to(logits.device)
    picks = pick_targets(p, s, logits.shape[-1])
    target = torch.stack([detection_targets(p, s, logits.shape[-1]), picks[:, 0], picks[:, 1]], dim=1)
    per_trace = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=(0, 2))
    return sum(w * per_trace[i] for i, w in enumerate(EQT_LOSS_WEIGHTS))  # type: ignore[return-value]


LOSSES: dict[str, LossFn] = {
    "pick_cross_entropy": pick_cross_entropy_loss,
    "eqt_bce": eqt_bce_loss,
    "mse": mse_loss,
    "gaussian_nll": gaussian_nll_loss,
    "creime_trace_mse": creime_trace_loss,
    "cross_entropy": cross_entropy_loss,
    "detection_cluster_ce": detection_cluster_loss,
}


def get_loss(name: str) -> LossFn:
    """Loss function by name; unknown names raise KeyError listing the known ones."""
    try:
        return LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}") from None


def compute_loss(name: str, outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> Tensor:
    return get_loss(name)(outputs, targets)
