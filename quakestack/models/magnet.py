"""MagNet (Mousavi & Beroza 2020): Conv1d + dropout + max-pool twice, a bidirectional LSTM, a dense layer.

The dense layer predicts the magnitude and the log of its aleatoric variance; training minimises the
paper's Gaussian negative log-likelihood (or plain MSE with ``loss=mse``, which drops the variance).
Like the Keras original, convolutions are linear (``activation=none``) and pooling pads to ceil(L/4).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from quakestack.models.common import check_input
from quakestack.models.spec import (
    MAGNITUDE_METRICS,
    ArchitectureSpec,
    HyperParameter,
    InputSpec,
    Task,
    construct,
    n_samples_hp,
)


class MagNet(nn.Module):
    """CNN + BiLSTM magnitude regressor with optional aleatoric uncertainty."""

    def __init__(
        self,
        *,
        in_channels: int,
        n_samples: int,
        conv1_channels: int,
        conv2_channels: int,
        kernel_size: int,
        pool_size: int,
        dropout: float,
        lstm_hidden: int,
        activation: str,
        predict_uncertainty: bool,
    ) -> None:
        super().__init__()
        self.in_channels, self.n_samples = in_channels, n_samples
        act: type[nn.Module] = nn.ReLU if activation == "relu" else nn.Identity
        pad = kernel_size // 2
        self.features = nn.Sequential(
            nn.Conv1d(in_channels, conv1_channels, kernel_size, padding=pad),
            act(),
            nn.Dropout(dropout),
            nn.MaxPool1d(pool_size, ceil_mode=True),
            nn.Conv1d(conv1_channels, conv2_channels, kernel_size, padding=pad),
            act(),
            nn.Dropout(dropout),
            nn.MaxPool1d(pool_size, ceil_mode=True),
        )
        self.lstm = nn.LSTM(conv2_channels, lstm_hidden, batch_first=True, bidirectional=True)
        self.predict_uncertainty = predict_uncertainty
        self.head = nn.Linear(2 * lstm_hidden, 2 if predict_uncertainty else 1)

    def forward(self, x: Tensor, extras: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        check_input(x, self.in_channels, self.n_samples, "MagNet")
        h = self.features(x).transpose(1, 2)  # [B, T, C]
        _, (h_n, _) = self.lstm(h)  # h_n: [2, B, H], last step of each direction
        out = self.head(torch.cat([h_n[0], h_n[1]], dim=1))
        result = {"magnitude": out[:, 0]}
        if self.predict_uncertainty:
            result["magnitude_log_var"] = out[:, 1]
        return result


HYPER_PARAMETERS = (
    n_samples_hp(3000, (3000, 6000), "window length: MagNet used 30 s STEAD windows (3000); 6000 = 60 s"),
    HyperParameter("conv1_channels", "int", 64, 1, 512, description="filters of the first Conv1d"),
    HyperParameter("conv2_channels", "int", 32, 1, 512, description="filters of the second Conv1d"),
    HyperParameter("kernel_size", "int", 3, 1, 31, description="Conv1d kernel size"),
    HyperParameter("pool_size", "int", 4, 1, 16, description="max-pool size after each Conv1d"),
    HyperParameter("dropout", "float", 0.2, 0.0, 0.9, description="dropout after each Conv1d"),
    HyperParameter("lstm_hidden", "int", 100, 1, 1024, description="BiLSTM units per direction"),
    HyperParameter(
        "activation",
        "choice",
        "none",
        choices=("none", "relu"),
        description="activation after each Conv1d (the original has none)",
    ),
    HyperParameter(
        "loss",
        "choice",
        "gaussian_nll",
        choices=("gaussian_nll", "mse"),
        description="gaussian_nll also predicts the aleatoric log-variance",
    ),
)


def build(hp: dict[str, Any]) -> nn.Module:
    return construct(MagNet, hp, in_channels=3, predict_uncertainty=hp["loss"] == "gaussian_nll")


ARCHITECTURE = ArchitectureSpec(
    name="magnet",
    task=Task.MAGNITUDE,
    description="MagNet: Conv1d/dropout/max-pool x2 -> BiLSTM -> dense; magnitude with aleatoric uncertainty",
    input_spec=InputSpec(n_samples=3000, components="ZNE", sampling_rate=100.0),
    outputs=("magnitude", "magnitude_log_var"),
    loss="gaussian_nll",
    metrics=MAGNITUDE_METRICS,
    hyper_parameters=HYPER_PARAMETERS,
    labels_required=("source_magnitude",),
    build=build,
    reference="Mousavi & Beroza (2020), A machine-learning approach for earthquake magnitude estimation, "
    "GRL 47, e2019GL085976, doi:10.1029/2019GL085976",
)
