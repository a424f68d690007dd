"""On-the-fly, seeded augmentations of training batches (SeisBench-style composable steps).

Each step is a small function of (batch, extras, generator); the pipeline applies the steps whose
hyper-parameter is non-zero, so a job with the defaults pays nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from quakestack.models.spec import HyperParameter

Step = Callable[[Tensor, dict[str, Tensor], torch.Generator], Tensor]

AUGMENTATION_HYPER_PARAMETERS: tuple[HyperParameter, ...] = (
    HyperParameter("augment_noise_prob", "float", 0.0, 0.0, 1.0,
                   description="probability of adding Gaussian noise (10% of the window's std) to a window"),
    HyperParameter("augment_gap_prob", "float", 0.0, 0.0, 1.0,
                   description="probability of zeroing a random gap of up to 5% of a window"),
    HyperParameter("augment_channel_dropout_prob", "float", 0.0, 0.0, 1.0,
                   description="probability of zeroing one random component of a window"),
    HyperParameter("augment_max_shift_samples", "int", 0, 0, 3000,
                   description="largest circular time shift in samples (arrival labels move with it)"),
    HyperParameter("augment_taper_fraction", "float", 0.0, 0.0, 0.5,
                   description="cosine taper applied to both ends of every window"),
    HyperParameter("ddp_processes", "int", 1, 1, 64,
                   description="data-parallel processes on CPU (gloo); on GPU one process per GPU (num_gpus)"),
    HyperParameter("num_nodes", "int", 1, 1, 64,
                   description="nodes of a multi-node DDP job (kubernetes executor: an Indexed Job under torchrun)"),
)


def _chosen(n: int, prob: float, gen: torch.Generator, device: torch.device) -> Tensor:
    return (torch.rand(n, generator=gen) < prob).to(device)


def add_noise(prob: float) -> Step:
    def step(x: Tensor, extras: dict[str, Tensor], gen: torch.Generator) -> Tensor:
        mask = _chosen(x.shape[0], prob, gen, x.device).to(x.dtype)[:, None, None]
        noise = torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
        return x + mask * 0.1 * x.std(dim=-1, keepdim=True) * noise
    return step


def add_gap(prob: float) -> Step:
    def step(x: Tensor, extras: dict[str, Tensor], gen: torch.Generator) -> Tensor:
        n, _, length = x.shape
        chosen = _chosen(n, prob, gen, torch.device("cpu"))
        width = (torch.rand(n, generator=gen) * 0.05 * length).long()
        start = (torch.rand(n, generator=gen) * (length - width)).long()
        positions = torch.arange(length)[None, :]
        gap = chosen[:, None] & (positions >= start[:, None]) & (positions < (start + width)[:, None])
        return x.masked_fill(gap[:, None, :].to(x.device), 0.0)
    return step


def drop_channel(prob: float) -> Step:
    def step(x: Tensor, extras: dict[str, Tensor], gen: torch.Generator) -> Tensor:
        n, channels, _ = x.shape
        chosen = _chosen(n, prob, gen, torch.device("cpu"))
        which = torch.randint(0, channels, (n,), generator=gen)
        mask = torch.ones(n, channels)
        mask[chosen, which[chosen]] = 0.0
        return x * mask[:, :, None].to(x.device, x.dtype)
    return step


def time_shift(max_shift: int) -> Step:
    """Roll each window; arrival-sample extras move with the waveform."""
    def step(x: Tensor, extras: dict[str, Tensor], gen: torch.Generator) -> Tensor:
        n, _, length = x.shape
        shifts = torch.randint(-max_shift, max_shift + 1, (n,), generator=gen)
        index = (torch.arange(length)[None, :] - shifts[:, None]) % length
        for name in ("p_arrival_sample", "s_arrival_sample"):
            if name in extras:
                extras[name] = extras[name] + shifts.to(extras[name].device, extras[name].dtype)
        return torch.gather(x, 2, index[:, None, :].expand(-1, x.shape[1], -1).to(x.device))
    return step


def taper(fraction: float) -> Step:
    def step(x: Tensor, extras: dict[str, Tensor], gen: torch.Generator) -> Tensor:
        length = x.shape[-1]
        width = max(1, int(fraction * length))
        ramp = 0.5 * (1 - torch.cos(torch.linspace(0, math.pi, width)))
        window = torch.ones(length)
        window[:width] = ramp
        window[-width:] = ramp.flip(0)
        return x * window.to(x.device, x.dtype)
    return step


def build_augmentations(hparams: Mapping[str, Any]) -> list[Step]:
    steps: list[Step] = []
    if hparams.get("augment_max_shift_samples", 0):
        steps.append(time_shift(int(hparams["augment_max_shift_samples"])))
    if hparams.get("augment_gap_prob", 0):
        steps.append(add_gap(float(hparams["augment_gap_prob"])))
    if hparams.get("augment_channel_dropout_prob", 0):
        steps.append(drop_channel(float(hparams["augment_channel_dropout_prob"])))
    if hparams.get("augment_noise_prob", 0):
        steps.append(add_noise(float(hparams["augment_noise_prob"])))
    if hparams.get("augment_taper_fraction", 0):
        steps.append(taper(float(hparams["augment_taper_fraction"])))
    return steps


def apply(steps: list[Step], x: Tensor, extras: dict[str, Tensor], gen: torch.Generator) -> Tensor:
    for step in steps:
        x = step(x, extras, gen)
    return x
