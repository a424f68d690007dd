"""PhaseNet-style picker (Zhu & Beroza 2019): a 1-D U-Net giving P, S and noise probabilities per sample.

Encoder: a stem convolution, then ``depth`` strided convolutions (stride ``down_stride``), the channel
count growing by ``channel_growth`` per level (PhaseNet: 8, 11, 16, 22, 32 with kernel 7, stride 4).
Decoder: transposed convolutions back up, each cropped to its skip connection and concatenated with
it, as in the paper. A 1x1 convolution gives three logits per sample; their softmax over the class
axis are the P, S and noise traces. Each window is demeaned and divided by its standard deviation
inside the model, so it is served correctly whatever the data's units.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from quakestack.models.common import check_input
from quakestack.models.spec import (
    PICKING_METRICS,
    ArchitectureSpec,
    HyperParameter,
    InputSpec,
    Task,
    construct,
    n_samples_hp,
)

PHASES = ("P", "S", "N")


def _block(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
                         nn.BatchNorm1d(c_out), nn.ReLU())


class PhaseNetUNet(nn.Module):
    """U-Net over time: per-sample logits for P, S and noise."""

    def __init__(self, *, in_channels: int, n_samples: int, base_channels: int, depth: int, kernel_size: int,
                 down_stride: int, channel_growth: float, normalize: bool) -> None:
        super().__init__()
        self.in_channels, self.n_samples, self.normalize = in_channels, n_samples, normalize
        widths = [max(1, int(round(base_channels * channel_growth**i))) for i in range(depth + 1)]
        self.stem = _block(in_channels, widths[0], kernel_size)
        self.down = nn.ModuleList(
            nn.Sequential(_block(widths[i], widths[i], kernel_size),
                          _block(widths[i], widths[i + 1], kernel_size, stride=down_stride))
            for i in range(depth))
        self.up = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose1d(widths[i + 1], widths[i], kernel_size, stride=down_stride,
                                             padding=kernel_size // 2, bias=False),
                          nn.BatchNorm1d(widths[i]), nn.ReLU())
            for i in reversed(range(depth)))
        self.merge = nn.ModuleList(_block(2 * widths[i], widths[i], kernel_size) for i in reversed(range(depth)))
        self.head = nn.Conv1d(widths[0], len(PHASES), 1)

    def forward(self, x: Tensor, extras: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        check_input(x, self.in_channels, self.n_samples, "PhaseNet")
        if self.normalize:
            x = x - x.mean(dim=-1, keepdim=True)
            x = x / x.std(dim=(1, 2), keepdim=True).clamp_min(1e-10)
        h = self.stem(x)
        skips = []
        for down in self.down:
            skips.append(h)
            h = down(h)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            h = up(h)
            length = skip.shape[-1]
            if h.shape[-1] < length:
                h = nn.functional.pad(h, (0, length - h.shape[-1]))
            h = merge(torch.cat([h[..., :length], skip], dim=1))
        logits = self.head(h)
        return {"pick_logits": logits, "sequence": torch.softmax(logits, dim=1)}


HYPER_PARAMETERS = (
    n_samples_hp(3001, (1000, 2000, 3000, 3001, 6000), "window length: 30 s at 100 Hz in the paper"),
    HyperParameter("base_channels", "int", 8, 2, 128, description="filters of the first level"),
    HyperParameter("depth", "int", 4, 1, 6, description="number of down-sampling levels"),
    HyperParameter("kernel_size", "int", 7, 3, 15, description="convolution kernel size (odd)"),
    HyperParameter("down_stride", "int", 4, 2, 8, description="stride of each down-sampling convolution"),
    HyperParameter("channel_growth", "float", 1.4, 1.0, 3.0, description="filter growth factor per level"),
    HyperParameter("normalize", "bool", True, description="demean and divide each window by its std"),
)


def build(hp: dict[str, Any]) -> nn.Module:
    if int(hp["kernel_size"]) % 2 == 0:
        raise ValueError("kernel_size must be odd")
    return construct(PhaseNetUNet, hp, in_channels=3)


ARCHITECTURE = ArchitectureSpec(
    name="phasenet",
    task=Task.PICKING,
    description="PhaseNet-style U-Net picker: P, S and noise probability per sample (Gaussian targets)",
    input_spec=InputSpec(n_samples=3001, components="ZNE", sampling_rate=100.0),
    outputs=("pick_logits", "sequence"),
    loss="pick_cross_entropy",
    metrics=PICKING_METRICS,
    hyper_parameters=HYPER_PARAMETERS,
    labels_required=("trace_p_arrival_sample", "trace_s_arrival_sample"),
    build=build,
    reference="Zhu & Beroza (2019), PhaseNet: a deep-neural-network-based seismic arrival-time picking method, "
    "Geophys. J. Int. 216(1), 261-273, doi:10.1093/gji/ggy423",
    class_names=PHASES,
)
