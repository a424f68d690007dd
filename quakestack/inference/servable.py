"""A registered model made ready to serve: card -> module on a device -> per-window numpy outputs.

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

from quakestack.data.preprocess import normalize
from quakestack.errors import FailedPrecondition
from quakestack.models.checkpoint import load_state

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


def _softmax(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.float(), dim=-1).cpu().numpy()


class ZooServable:
    """A model-zoo architecture (quakestack.models) built from its card and state_dict."""

    def __init__(self, card: dict[str, Any], weights: bytes, device: torch.device):
        from quakestack.models.zoo import build_model, get_architecture

        try:
            arch = get_architecture(card["architecture"])
        except KeyError as exc:
            raise FailedPrecondition(str(exc)) from None
        module, hparams, input_spec = build_model(card["architecture"], card.get("hyper_parameters") or {})
        module.load_state_dict(load_state(weights))
        self.module = module.to(device).eval()
        self.device = device
        self.memory_bytes = module_bytes(self.module)
        card_spec = card.get("input_spec") or {}
        self.spec = ServingSpec(
            task=str(card.get("task") or arch.task.value),
            n_samples=int(card_spec.get("n_samples", input_spec.n_samples)),
            components=str(card_spec.get("components", input_spec.components)),
            sampling_rate=float(card_spec.get("sampling_rate", input_spec.sampling_rate)),
            extra_inputs=tuple(card_spec.get("extra_inputs", input_spec.extra_inputs)),
            class_names=tuple(card.get("class_names") or arch.class_names),
            normalization=str(card.get("normalization") or "none"),
            p_offset_s=float(card.get("p_offset_s") or card_spec.get("p_offset_s") or DEFAULT_P_OFFSET_S),
            outputs=served_outputs(arch.outputs, tuple(card.get("class_names") or arch.class_names)),
            sequence_labels=",".join(arch.class_names) if arch.task.value == "picking" else "",
        )

    def run(self, x: np.ndarray, extras: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = normalize(x, self.spec.normalization)
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(x)).to(self.device, non_blocking=True)
            ex = {k: torch.as_tensor(v, dtype=torch.float32, device=self.device) for k, v in extras.items()}
            out = self.module(batch, ex or None)
            return self._outputs(out)

    def _outputs(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        result: dict[str, np.ndarray] = {}
        if "sequence" in out:  # pickers: per-sample probabilities [N, K, L]
            result["sequence"] = out["sequence"].float().cpu().numpy()
        if "magnitude" in out:
            result["magnitude"] = out["magnitude"].float().cpu().numpy().reshape(-1)
        if "magnitude_log_var" in out:
            result["magnitude_std"] = torch.exp(0.5 * out["magnitude_log_var"].float()).cpu().numpy().reshape(-1)
        if "logits" in out:
            probs = _softmax(out["logits"])
            result["class_probabilities"] = probs
            names = self.spec.class_names
            if names and NOISE_CLASS in names:
                result["detection_probability"] = 1.0 - probs[:, names.index(NOISE_CLASS)]
            elif probs.shape[1] == 2:
                result["detection_probability"] = probs[:, 1]
        if "cluster_logits" in out:
            result["location_cluster"] = out["cluster_logits"].argmax(dim=-1).cpu().numpy().astype(np.int32)
        return result


def served_outputs(module_outputs: tuple[str, ...], class_names: tuple[str, ...]) -> tuple[str, ...]:
    """The names ``ZooServable._outputs`` derives from a module's raw outputs, in that order."""
    names: list[str] = []
    if "sequence" in module_outputs:
        names.append("sequence")
    if "magnitude" in module_outputs:
        names.append("magnitude")
    if "magnitude_log_var" in module_outputs:
        names.append("magnitude_std")
    if "logits" in module_outputs:
        names.append("class_probabilities")
        if NOISE_CLASS in class_names or len(class_names) == 2:
            names.append("detection_probability")
    if "cluster_logits" in module_outputs:
        names.append("location_cluster")
    return tuple(names)


def build_servable(card: dict[str, Any], weights: bytes, device: torch.device) -> Servable:
    """Zoo architectures by name; ``seisbench:<Class>`` through the SeisBench adapter."""
    if str(card.get("architecture", "")).startswith("seisbench:"):
        from quakestack.inference.seisbench_adapter import SeisBenchServable

        return SeisBenchServable(card, weights, device)
    return ZooServable(card, weights, device)
