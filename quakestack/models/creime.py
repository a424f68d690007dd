"""CREIME (Chakraborty et al. 2022): convolutional-recurrent earthquake identification and magnitude.

Three Conv1d layers (32, 16, 8 filters, kernel 15) each followed by max-pool 4, two LSTMs (128, 256
units), and a dense layer emitting one value per input sample: -4 before the P arrival (and throughout
noise windows), the magnitude from P on. The magnitude estimate is the mean of the last
``n_average`` output samples; a window whose estimate exceeds ``detection_threshold`` is an event.
Default window 512 samples (5.12 s at 100 Hz), as in the paper and EQ-Web.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from quakestack.models.common import check_input, output_shape
from quakestack.models.losses import CREIME_NOISE_VALUE
from quakestack.models.spec import (
    MAGNITUDE_METRICS,
    ArchitectureSpec,
    HyperParameter,
    InputSpec,
    Task,
    construct,
    n_samples_hp,
)


class CREIME(nn.Module):
    """CNN + LSTM emitting a per-sample magnitude trace, reduced to a magnitude and an event score."""

    def __init__(
        self,
        *,
        in_channels: int,
        n_samples: int,
        conv1_channels: int,
        conv2_channels: int,
        conv3_channels: int,
        kernel_size: int,
        lstm1_units: int,
        lstm2_units: int,
        n_average: int,
        detection_threshold: float,
        pool_size: int = 4,
    ) -> None:
        super().__init__()
        self.in_channels, self.n_samples = in_channels, n_samples
        # the magnitude averages the trace's last n_average samples (at most the whole window)
        self.n_average, self.detection_threshold = min(n_average, n_samples), detection_threshold
        layers: list[nn.Module] = []
        prev = in_channels
        for ch in (conv1_channels, conv2_channels, conv3_channels):
            layers += [
                nn.Conv1d(prev, ch, kernel_size, padding=kernel_size // 2),
                nn.ReLU(),
                nn.MaxPool1d(pool_size),
            ]
            prev = ch
        self.features = nn.Sequential(*layers)
        steps = output_shape(self.features, in_channels, n_samples)[-1]
        self.lstm1 = nn.LSTM(prev, lstm1_units, batch_first=True)
        self.lstm2 = nn.LSTM(lstm1_units, lstm2_units, batch_first=True)
        self.head = nn.Linear(steps * lstm2_units, n_samples)
        nn.init.constant_(self.head.bias, CREIME_NOISE_VALUE)  # start from "noise everywhere"

    def forward(self, x: Tensor, extras: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        check_input(x, self.in_channels, self.n_samples, "CREIME")
        h = self.features(x).transpose(1, 2)
        h, _ = self.lstm1(h)
        h, _ = self.lstm2(h)
        trace = self.head(h.reshape(h.shape[0], -1))
        magnitude = trace[:, -self.n_average :].mean(dim=1)
        return {
            "magnitude": magnitude,
            "magnitude_trace": trace,
            "event_score": magnitude - self.detection_threshold,
        }


HYPER_PARAMETERS = (
    n_samples_hp(512, (512, 1024), "window length (paper: 512 samples at 100 Hz)"),
    HyperParameter("conv1_channels", "int", 32, 1, 256, description="filters of Conv1d 1"),
    HyperParameter("conv2_channels", "int", 16, 1, 256, description="filters of Conv1d 2"),
    HyperParameter("conv3_channels", "int", 8, 1, 256, description="filters of Conv1d 3"),
    HyperParameter("kernel_size", "int", 15, 1, 63, description="Conv1d kernel size"),
    HyperParameter("lstm1_units", "int", 128, 1, 1024, description="units of the first LSTM"),
    HyperParameter("lstm2_units", "int", 256, 1, 1024, description="units of the second LSTM"),
    HyperParameter("n_average", "int", 10, 1, 512, description="output samples averaged into the magnitude"),
    HyperParameter(
        "detection_threshold",
        "float",
        -0.5,
        -4.0,
        10.0,
        description="estimate above which a window counts as an event",
    ),
)


def build(hp: dict[str, Any]) -> nn.Module:
    return construct(CREIME, hp, in_channels=3)


ARCHITECTURE = ArchitectureSpec(
    name="creime",
    task=Task.MAGNITUDE,
    description="CREIME: Conv1d x3 + LSTM x2 -> per-sample magnitude trace; magnitude and event/noise",
    input_spec=InputSpec(n_samples=512, components="ZNE", sampling_rate=100.0),
    outputs=("magnitude", "magnitude_trace", "event_score"),
    loss="creime_trace_mse",
    metrics=MAGNITUDE_METRICS,
    hyper_parameters=HYPER_PARAMETERS,
    labels_required=("source_magnitude",),
    build=build,
    reference="Chakraborty, Cartaya Fenner, Li, Faber, Zhou, Ruempker & Srivastava (2022), CREIME—A "
    "convolutional recurrent model for earthquake identification and magnitude estimation, JGR Solid Earth "
    "127, e2022JB024595, doi:10.1029/2022JB024595",
)
