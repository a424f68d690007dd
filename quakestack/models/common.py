"""Small building blocks shared by the architectures (extras handling, amplitude normalisation, shapes)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def require_extras(extras: dict[str, Tensor] | None, names: tuple[str, ...], model: str, batch: int) -> list[Tensor]:
    """Return the named scalar extras as float [B] tensors; fail clearly when a caller forgot them."""
    missing = [n for n in names if extras is None or n not in extras]
    if missing:
        raise ValueError(f"{model} needs extra inputs {list(names)}; missing {missing}")
    out = []
    for name in names:
        value = torch.as_tensor(extras[name]).float().reshape(-1)  # type: ignore[index]
        if value.shape[0] != batch:
            raise ValueError(f"{model}: extra input {name} has {value.shape[0]} values for a batch of {batch}")
        out.append(value)
    return out


def peak_normalize(x: Tensor, eps: float = 1e-12) -> tuple[Tensor, Tensor]:
    """Divide each window by its peak absolute amplitude; also return log10(peak) per window.

    Networks see a well-scaled waveform whatever the instrument units, and the magnitude-bearing amplitude
    survives as one scalar feature (as ConvNetQuake-INGV feeds the log of the normalisation factor).
    """
    peak = x.detach().abs().amax(dim=(1, 2)).clamp_min(eps)
    return x / peak[:, None, None], torch.log10(peak)


def demean(x: Tensor) -> Tensor:
    """Remove the per-channel mean (the usual ConvNetQuake preprocessing)."""
    return x - x.mean(dim=-1, keepdim=True)


@torch.no_grad()
def output_shape(module: nn.Module, in_channels: int, n_samples: int) -> torch.Size:
    """Shape of ``module``'s output for one window, found by a dry run (robust to padding arithmetic)."""
    was_training = module.training
    module.eval()
    try:
        return module(torch.zeros(1, in_channels, n_samples)).shape[1:]
    finally:
        module.train(was_training)


def check_input(x: Tensor, in_channels: int, n_samples: int, model: str) -> None:
    """Fail with the expected shape instead of an opaque matmul error deep inside the network."""
    if x.dim() != 3 or x.shape[1] != in_channels or x.shape[2] != n_samples:
        raise ValueError(f"{model} expects input [B, {in_channels}, {n_samples}], got {list(x.shape)}")


def stride2_conv_stack(in_channels: int, n_layers: int, channels: int, kernel_size: int) -> list[nn.Module]:
    """ConvNetQuake's feature extractor: Conv1d(stride 2) + ReLU, `n_layers` times, halving the length each time."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Conv1d(in_channels if i == 0 else channels, channels, kernel_size, stride=2,
                             padding=(kernel_size - 1) // 2), nn.ReLU()]
    return layers
