"""What every servable shares: a registered model made ready to serve (card -> module on a device ->
per-window numpy outputs).

Everything the batcher and the annotator need from a model is here, whatever its origin (our model
zoo or a SeisBench picker): the input spec requests are checked against, the normalisation training
used, and one ``run`` turning a float32 batch [N, C, L] into named per-window outputs:

- ``magnitude`` [N], ``magnitude_std`` [N] (from the log-variance head where there is one);
- ``class_probabilities`` [N, K] (softmax of the logits, in ``class_names`` order);
- ``detection_probability`` [N] (the "event" class, or 1 - p(noise) for classifiers);
- ``location_cluster`` [N] (argmax of ConvNetQuake's cluster head);
- ``sequence`` [N, K, L] per-sample probabilities of pickers, channels named by ``sequence_labels``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

NOISE_CLASS = "noise"
DEFAULT_P_OFFSET_S = 5.0  # a card without the training windows' P offset (older cards, SeisBench models)


@dataclass(frozen=True)
class ServingSpec:
    """What requests must look like and what comes back."""

    task: str  # "magnitude" | "detection" | "classification" | "picking"
    n_samples: int
    components: str
    sampling_rate: float
    extra_inputs: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    sequence_labels: str = ""  # pickers: one letter/name per output channel, e.g. "PSN"
    normalization: str = "none"
    p_offset_s: float = DEFAULT_P_OFFSET_S  # where training put the P onset in a window (magnitude on detections)
    outputs: tuple[str, ...] = ()  # the per-window outputs ``run`` returns (the module docstring's names)
    extra: dict[str, Any] = field(default_factory=dict)


class Servable(Protocol):
    """A model the batcher can run."""

    spec: ServingSpec
    device: torch.device
    memory_bytes: int

    def run(self, x: np.ndarray, extras: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def module_bytes(module: nn.Module) -> int:
    """Bytes of parameters and buffers: what the memory budget counts."""
    tensors = [*module.parameters(), *module.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))
