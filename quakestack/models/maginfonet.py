"""MagInfoNet (EQ-Web): CNN + graph layers on the waveform, informed by P/S arrivals and P travel time.

Following EQ-Web's definition in 1D: a residual Conv1d block turns the 3-component window into one
trace; two small MLPs lift the (P, S) arrival samples and the P travel time to traces of the same
length; the three traces are stacked and pass residual Conv1d blocks (kernel 5, BatchNorm, ReLU,
dropout), a max-pool by ``pool_size``, two graph layers over the pooled time steps (the second down to
one feature) and a dense output. Arrival samples are scaled by the window length and travel time by
``travel_time_scale_s`` (EQ-Web standardises with dataset statistics, which a served model lacks);
missing values (NaN) become 0.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from quakestack.models.common import check_input, require_extras
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

EXTRA_INPUTS = ("p_arrival_sample", "s_arrival_sample", "p_travel_s")


class _ResidualBlock(nn.Module):
    """Two (BatchNorm, ReLU, dropout, Conv1d) steps with an identity shortcut."""

    def __init__(self, channels: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [
                nn.BatchNorm1d(channels),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2),
            ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class MagInfoNet(nn.Module):
    """Waveform CNN + arrival-time MLPs -> residual CNN -> graph layers -> magnitude."""

    def __init__(
        self,
        *,
        in_channels: int,
        n_samples: int,
        width: int,
        n_blocks: int,
        info_hidden: int,
        pool_size: int,
        graph_layer: str,
        k_neighbours: int,
        learn_edge_weight: bool,
        dropout: float,
        travel_time_scale_s: float,
    ) -> None:
        super().__init__()
        self.in_channels, self.n_samples, self.travel_time_scale_s = (
            in_channels,
            n_samples,
            travel_time_scale_s,
        )
        self.wave = nn.Sequential(
            nn.Conv1d(in_channels, width, 3, padding=1),
            _ResidualBlock(width, 3, dropout),
            nn.BatchNorm1d(width),
            nn.Conv1d(width, 1, 3, padding=1),
        )
        self.arrivals = nn.Sequential(nn.Linear(2, info_hidden), nn.ReLU(), nn.Linear(info_hidden, n_samples))
        self.travel = nn.Sequential(nn.Linear(1, info_hidden), nn.ReLU(), nn.Linear(info_hidden, n_samples))
        self.fuse = nn.Sequential(
            nn.Conv1d(3, width, 5, padding=2),
            *[_ResidualBlock(width, 5, dropout) for _ in range(n_blocks)],
            nn.MaxPool1d(pool_size),
        )
        n_nodes = n_samples // pool_size
        self.graph1 = TemporalGraphLayer(graph_layer, width, width, n_nodes, k_neighbours, learn_edge_weight)
        self.graph2 = TemporalGraphLayer(graph_layer, width, 1, n_nodes, k_neighbours, learn_edge_weight)
        self.relu = nn.ReLU()
        self.head = nn.Linear(n_nodes, 1)

    def forward(self, x: Tensor, extras: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        check_input(x, self.in_channels, self.n_samples, "MagInfoNet")
        p, s, t = (v.to(x) for v in require_extras(extras, EXTRA_INPUTS, "MagInfoNet", x.shape[0]))
        arrivals = torch.nan_to_num(torch.stack([p, s], dim=1) / self.n_samples)
        travel = torch.nan_to_num(t[:, None] / self.travel_time_scale_s)
        h = torch.cat([self.wave(x), self.arrivals(arrivals)[:, None], self.travel(travel)[:, None]], dim=1)
        h = self.fuse(h)
        h = self.graph2(self.relu(self.graph1(h)))
        return {"magnitude": self.head(h.flatten(1))[:, 0]}


HYPER_PARAMETERS = (
    n_samples_hp(6000, (6000, 3000), "window length (STEAD 60 s = 6000)"),
    HyperParameter("width", "int", 32, 1, 256, description="filters of the Conv1d layers"),
    HyperParameter("n_blocks", "int", 4, 0, 16, description="residual blocks after fusing the three traces"),
    HyperParameter("info_hidden", "int", 1000, 1, 4096, description="hidden units of the arrival-time MLPs"),
    HyperParameter("pool_size", "int", 10, 1, 100, description="max-pool before the graph layers"),
    HyperParameter(
        "graph_layer",
        "choice",
        "transformer",
        choices=GRAPH_LAYERS,
        description="torch-geometric conv over time-step nodes (EQ-Web: UniMP = transformer)",
    ),
    HyperParameter("k_neighbours", "int", 1, 1, 16, description="edges to the k nearest time steps on each side"),
    HyperParameter("learn_edge_weight", "bool", True, description="learn edge weights (weighted convs only)"),
    HyperParameter("dropout", "float", 0.5, 0.0, 0.9, description="dropout inside the residual blocks"),
    HyperParameter("travel_time_scale_s", "float", 100.0, 1e-3, 1e5, description="P travel time is divided by this"),
)


def build(hp: dict[str, Any]) -> nn.Module:
    return construct(MagInfoNet, hp, in_channels=3)


ARCHITECTURE = ArchitectureSpec(
    name="maginfonet",
    task=Task.MAGNITUDE,
    description="MagInfoNet: CNN + graph layers on the waveform, plus P/S arrival samples and P travel time",
    input_spec=InputSpec(n_samples=6000, components="ZNE", sampling_rate=100.0, extra_inputs=EXTRA_INPUTS),
    outputs=("magnitude",),
    loss="mse",
    metrics=MAGNITUDE_METRICS,
    hyper_parameters=HYPER_PARAMETERS,
    labels_required=("source_magnitude",),
    build=build,
    reference="Chen, Z. et al., MagInfoNet, as defined in EQ-Web: github.com/czw1296924847/EQ-Web (func/net.py)",
)
