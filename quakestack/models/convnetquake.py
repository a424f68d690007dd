"""ConvNetQuake (Perol, Gharbi & Denolle 2018): event detection and location cluster from 10 s windows.

Eight Conv1d layers (32 filters, kernel 3, stride 2, zero padding, ReLU) reduce a 1000-sample window to
4 x 32 features. The paper ends in one softmax over noise + N clusters; here two heads share the
features — event/noise logits and cluster logits — so a dataset without clusters still trains the
detector. Each window is demeaned and divided by its peak amplitude, as in the paper.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from quakestack.models.common import check_input, demean, output_shape, peak_normalize, stride2_conv_stack
from quakestack.models.spec import (
    DETECTION_CLASSES,
    DETECTION_METRICS,
    ArchitectureSpec,
    HyperParameter,
    InputSpec,
    Task,
    construct,
    n_samples_hp,
)


class ConvNetQuake(nn.Module):
    """Stride-2 Conv1d stack -> flatten -> detection head + location-cluster head."""

    def __init__(
        self,
        *,
        in_channels: int,
        n_samples: int,
        n_layers: int,
        channels: int,
        kernel_size: int,
        n_clusters: int,
        normalize: bool,
    ) -> None:
        super().__init__()
        self.in_channels, self.n_samples, self.normalize = in_channels, n_samples, normalize
        self.features = nn.Sequential(*stride2_conv_stack(in_channels, n_layers, channels, kernel_size), nn.Flatten())
        n_flat = output_shape(self.features, in_channels, n_samples).numel()
        self.detection_head = nn.Linear(n_flat, len(DETECTION_CLASSES))
        self.cluster_head = nn.Linear(n_flat, n_clusters)

    def forward(self, x: Tensor, extras: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        check_input(x, self.in_channels, self.n_samples, "ConvNetQuake")
        if self.normalize:
            x, _ = peak_normalize(demean(x))
        h = self.features(x)
        return {"logits": self.detection_head(h), "cluster_logits": self.cluster_head(h)}


HYPER_PARAMETERS = (
    n_samples_hp(1000, (1000, 2000), "window length: 10 s at 100 Hz in the paper"),
    HyperParameter("n_layers", "int", 8, 1, 11, description="number of stride-2 Conv1d layers"),
    HyperParameter("channels", "int", 32, 1, 512, description="filters per Conv1d"),
    HyperParameter("kernel_size", "int", 3, 2, 15, description="Conv1d kernel size"),
    HyperParameter("n_clusters", "int", 6, 1, 1000, description="number of location clusters"),
    HyperParameter("normalize", "bool", True, description="demean and divide each window by its peak"),
)


def build(hp: dict[str, Any]) -> nn.Module:
    return construct(ConvNetQuake, hp, in_channels=3)


ARCHITECTURE = ArchitectureSpec(
    name="convnetquake",
    task=Task.DETECTION,
    description="ConvNetQuake: 8 stride-2 Conv1d layers on 10 s windows -> event/noise + location cluster",
    input_spec=InputSpec(n_samples=1000, components="ZNE", sampling_rate=100.0),
    outputs=("logits", "cluster_logits"),
    loss="detection_cluster_ce",
    metrics=DETECTION_METRICS,
    hyper_parameters=HYPER_PARAMETERS,
    labels_required=("trace_category",),
    build=build,
    reference="Perol, Gharbi & Denolle (2018), Convolutional neural network for earthquake detection and "
    "location, Science Advances 4(2), e1700578, doi:10.1126/sciadv.1700578",
    class_names=DETECTION_CLASSES,
)
