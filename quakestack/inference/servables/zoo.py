"""A model-zoo architecture (quakestack.models) served: built from its card and state_dict, outputs mapped
to the names of ``base``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from quakestack.data.preprocess import normalize
from quakestack.errors import FailedPrecondition
from quakestack.inference.servables.base import DEFAULT_P_OFFSET_S, NOISE_CLASS, ServingSpec, module_bytes
from quakestack.models.checkpoint import load_state


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
