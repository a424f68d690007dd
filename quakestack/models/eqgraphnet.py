"""EQGraphNet (Chen et al. 2024, EQ-Web): a stride-2 Conv1d stack with graph layers over time steps.

Eleven Conv1d layers (kernel 2, stride 2; 16, 16, 16, 32, 32, 32, 64, 64, 64, 128, 128 filters) halve a
6000-sample window down to 2 steps. After each convolution but the last, a graph layer treats the time
steps as nodes linked to their ``k_neighbours`` on either side, with a residual connection; ReLU
precedes every later convolution. The flattened last features feed one dense output: the magnitude.
The graph layer type is a hyper-parameter (EQ-Web default: GCN, k = 1, learnt edge weights).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from quakestack.models.common import check_input
from quakestack.models.graph import GRAPH_LAYERS, TemporalGraphLayer
from quakestack.models.spec import (
    MAGNITUDE_METRICS,
    ArchitectureSpec,
    HyperParameter,
    InputSpec,
    Task,
    construct,
    n_samples_hp,
)


class EQGraphNet(nn.Module):
    """Conv1d (stride 2) + residual temporal graph layers -> dense magnitude."""

    def __init__(
        self,
        *,
        in_channels: int,
        n_samples: int,
        n_conv_layers: int,
        base_channels: int,
        max_channels: int,
        graph_layer: str,
        k_neighbours: int,
        learn_edge_weight: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        self.in_channels, self.n_samples = in_channels, n_samples
        channels = [min(base_channels * 2 ** (i // 3), max_channels) for i in range(n_conv_layers)]
        lengths = []
        length = n_samples
        for _ in range(n_conv_layers):
            length //= 2
            lengths.append(length)
        if length < 1:
            raise ValueError(f"n_conv_layers={n_conv_layers} halves {n_samples} samples to nothing")
        self.convs = nn.ModuleList(
            nn.Conv1d(in_channels if i == 0 else channels[i - 1], channels[i], kernel_size=2, stride=2)
            for i in range(n_conv_layers)
        )
        self.graphs = nn.ModuleList(
            TemporalGraphLayer(graph_layer, channels[i], channels[i], lengths[i], k_neighbours, learn_edge_weight)
            for i in range(n_conv_layers - 1)
        )
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels[-1] * lengths[-1], 1)

    def forward(self, x: Tensor, extras: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        check_input(x, self.in_channels, self.n_samples, "EQGraphNet")
        h = x
        for i, conv in enumerate(self.convs):
            h = conv(h if i == 0 else self.relu(h))
            if i < len(self.graphs):
                h = h + self.graphs[i](h)
        return {"magnitude": self.head(self.dropout(h.flatten(1)))[:, 0]}


HYPER_PARAMETERS = (
    n_samples_hp(6000, (6000, 3000), "window length (STEAD 60 s = 6000)"),
    HyperParameter("n_conv_layers", "int", 11, 2, 12, description="stride-2 Conv1d layers (graph after all but last)"),
    HyperParameter("base_channels", "int", 16, 1, 256, description="filters of the first 3 layers; doubles every 3"),
    HyperParameter("max_channels", "int", 128, 1, 1024, description="cap on filters per layer"),
    HyperParameter(
        "graph_layer",
        "choice",
        "gcn",
        choices=GRAPH_LAYERS,
        description="torch-geometric conv used over time-step nodes",
    ),
    HyperParameter("k_neighbours", "int", 1, 1, 16, description="edges to the k nearest time steps on each side"),
    HyperParameter("learn_edge_weight", "bool", True, description="learn edge weights (weighted convs only)"),
    HyperParameter("dropout", "float", 0.0, 0.0, 0.9, description="dropout before the dense output"),
)


def build(hp: dict[str, Any]) -> nn.Module:
    return construct(EQGraphNet, hp, in_channels=3)


ARCHITECTURE = ArchitectureSpec(
    name="eqgraphnet",
    task=Task.MAGNITUDE,
    description="EQGraphNet: stride-2 Conv1d stack with residual graph layers over time steps; magnitude",
    input_spec=InputSpec(n_samples=6000, components="ZNE", sampling_rate=100.0),
    outputs=("magnitude",),
    loss="mse",
    metrics=MAGNITUDE_METRICS,
    hyper_parameters=HYPER_PARAMETERS,
    labels_required=("source_magnitude",),
    build=build,
    reference="Chen, Z. et al. (2024), EQGraphNet: advancing single-station earthquake magnitude estimation "
    "via deep graph networks with residual connections; code: github.com/czw1296924847/EQ-Web (func/net.py)",
)
