"""GBF-style event classifier: an AlexNet-like 1D CNN separating earthquakes, explosions and noise.

AlexNet's five convolutions (96, 256, 384, 384, 256 filters; kernels 11/4, 5, 3, 3, 3; max-pools after
1, 2 and 5) in 1D, adaptive average pooling to 6 steps, then two dropout + dense layers. Filter counts
scale with ``width``; the dense layers default to 1024 units (AlexNet: 4096), enough for three classes.
Windows are demeaned and peak-normalised: the class lives in the waveform shape, not its amplitude.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from quakestack.models.common import check_input, demean, peak_normalize
from quakestack.models.spec import (
    CLASSIFICATION_METRICS,
    EVENT_CLASSES,
    ArchitectureSpec,
    HyperParameter,
    InputSpec,
    Task,
    construct,
    n_samples_hp,
)

_ALEXNET = ((96, 11, 4, True), (256, 5, 1, True), (384, 3, 1, False), (384, 3, 1, False), (256, 3, 1, True))


class EventClassifier(nn.Module):
    """AlexNet-like 1D CNN -> logits over earthquake / explosion / noise."""

    def __init__(
        self,
        *,
        in_channels: int,
        n_samples: int,
        width: float,
        fc_units: int,
        dropout: float,
        n_classes: int,
        normalize: bool,
    ) -> None:
        super().__init__()
        self.in_channels, self.n_samples, self.normalize = in_channels, n_samples, normalize
        layers: list[nn.Module] = []
        prev = in_channels
        for filters, kernel, stride, pool in _ALEXNET:
            ch = max(1, round(filters * width))
            layers += [nn.Conv1d(prev, ch, kernel, stride=stride, padding=kernel // 2), nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool1d(3, stride=2))
            prev = ch
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(6), nn.Flatten())
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(prev * 6, fc_units),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_units, fc_units),
            nn.ReLU(inplace=True),
            nn.Linear(fc_units, n_classes),
        )

    def forward(self, x: Tensor, extras: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        check_input(x, self.in_channels, self.n_samples, "EventClassifier")
        if self.normalize:
            x, _ = peak_normalize(demean(x))
        return {"logits": self.classifier(self.features(x))}


HYPER_PARAMETERS = (
    n_samples_hp(6000, (6000, 3000), "window length (STEAD 60 s = 6000)"),
    HyperParameter("width", "float", 1.0, 0.01, 4.0, description="multiplier on AlexNet's filter counts"),
    HyperParameter("fc_units", "int", 1024, 4, 4096, description="units of each dense layer"),
    HyperParameter("dropout", "float", 0.5, 0.0, 0.9, description="dropout before each dense layer"),
    HyperParameter("normalize", "bool", True, description="demean and divide each window by its peak"),
)


def build(hp: dict[str, Any]) -> nn.Module:
    return construct(EventClassifier, hp, in_channels=3, n_classes=len(EVENT_CLASSES))


ARCHITECTURE = ArchitectureSpec(
    name="event_classifier",
    task=Task.CLASSIFICATION,
    description="GBF-style AlexNet-like 1D CNN: earthquake / explosion / noise",
    input_spec=InputSpec(n_samples=6000, components="ZNE", sampling_rate=100.0),
    outputs=("logits",),
    loss="cross_entropy",
    metrics=CLASSIFICATION_METRICS,
    hyper_parameters=HYPER_PARAMETERS,
    labels_required=("trace_category",),
    build=build,
    reference="Krizhevsky, Sutskever & Hinton (2012), ImageNet classification with deep convolutional "
    "neural networks (AlexNet), NeurIPS; applied in 1D to seismic event discrimination",
    class_names=EVENT_CLASSES,
)
