"""ConvNetQuake-INGV (Lomax, Michelini & Jozinović 2019), magnitude head.

Stacked Conv1d layers (32 filters, kernel 3, stride 2, ReLU) halve the window each time, then a dense
layer. As in the INGV variant, each window is divided by its peak amplitude and log10 of that peak joins
the flattened features, so the network sees well-scaled waveforms and still the magnitude-bearing
amplitude. Deviation: the paper predicts binned probability distributions for several source
parameters; here one dense output regresses the magnitude (as EQ-Web does).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from quakestack.models.common import check_input, output_shape, peak_normalize, stride2_conv_stack
from quakestack.models.spec import (
    MAGNITUDE_METRICS,
    ArchitectureSpec,
    HyperParameter,
    InputSpec,
    Task,
    construct,
    n_samples_hp,
)


class ConvNetQuakeINGV(nn.Module):
    """Stride-2 Conv1d stack -> flatten (+ log peak amplitude) -> dense -> magnitude."""

    def __init__(
        self,
        *,
        in_channels: int,
        n_samples: int,
        n_layers: int,
        channels: int,
        kernel_size: int,
        hidden_units: int,
        dropout: float,
        amplitude_input: bool,
    ) -> None:
        super().__init__()
        self.in_channels, self.n_samples, self.amplitude_input = in_channels, n_samples, amplitude_input
        self.features = nn.Sequential(*stride2_conv_stack(in_channels, n_layers, channels, kernel_size), nn.Flatten())
        n_flat = output_shape(self.features, in_channels, n_samples).numel() + int(amplitude_input)
        head: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden_units:
            head += [
                nn.Linear(n_flat, hidden_units),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden_units, 1),
            ]
        else:
            head += [nn.Linear(n_flat, 1)]
        self.head = nn.Sequential(*head)

    def forward(self, x: Tensor, extras: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        check_input(x, self.in_channels, self.n_samples, "ConvNetQuake-INGV")
        if self.amplitude_input:
            x, log_peak = peak_normalize(x)
            h = torch.cat([self.features(x), log_peak[:, None]], dim=1)
        else:
            h = self.features(x)
        return {"magnitude": self.head(h)[:, 0]}


HYPER_PARAMETERS = (
    n_samples_hp(6000, (6000, 3000, 1000), "window length (STEAD 60 s = 6000)"),
    HyperParameter("n_layers", "int", 9, 1, 12, description="number of stride-2 Conv1d layers"),
    HyperParameter("channels", "int", 32, 1, 512, description="filters per Conv1d"),
    HyperParameter("kernel_size", "int", 3, 2, 15, description="Conv1d kernel size"),
    HyperParameter("hidden_units", "int", 0, 0, 4096, description="dense hidden layer (0 = none)"),
    HyperParameter("dropout", "float", 0.0, 0.0, 0.9, description="dropout before the dense layer(s)"),
    HyperParameter(
        "amplitude_input",
        "bool",
        True,
        description="normalise windows by peak amplitude and feed log10(peak) to the dense layer",
    ),
)


def build(hp: dict[str, Any]) -> nn.Module:
    return construct(ConvNetQuakeINGV, hp, in_channels=3)


ARCHITECTURE = ArchitectureSpec(
    name="convnetquake_ingv",
    task=Task.MAGNITUDE,
    description="ConvNetQuake-INGV: 9 stride-2 Conv1d layers (32 filters) -> dense; magnitude regression",
    input_spec=InputSpec(n_samples=6000, components="ZNE", sampling_rate=100.0),
    outputs=("magnitude",),
    loss="mse",
    metrics=MAGNITUDE_METRICS,
    hyper_parameters=HYPER_PARAMETERS,
    labels_required=("source_magnitude",),
    build=build,
    reference="Lomax, Michelini & Jozinović (2019), An investigation of rapid earthquake characterization "
    "using single-station waveforms and a convolutional neural network, SRL 90(2A), doi:10.1785/0220180311",
)
