"""Serve any SeisBench picker/detector (PhaseNet, EQTransformer, ...) from a local state_dict.

The card names the class as ``"architecture": "seisbench:PhaseNet"`` and its constructor arguments in
``hyper_parameters``; weights are a plain state_dict read with ``weights_only=True`` — nothing is
downloaded. SeisBench's own ``annotate_batch_pre``/``annotate_batch_post`` run around the forward, so
the per-sample probabilities are exactly those ``model.annotate`` would stack.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from quakestack.errors import FailedPrecondition
from quakestack.inference.servables.base import ServingSpec, module_bytes
from quakestack.models.checkpoint import load_state

PREFIX = "seisbench:"


def seisbench_class(architecture: str) -> type:
    """The seisbench.models class named after the prefix; only WaveformModel subclasses qualify."""
    try:
        import seisbench.models as sbm
    except ImportError:
        raise FailedPrecondition(f"{architecture!r} needs SeisBench: pip install 'quakestack[seisbench]'") from None

    name = architecture.removeprefix(PREFIX)
    cls = getattr(sbm, name, None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, sbm.WaveformModel):
        raise FailedPrecondition(f"{architecture!r} is not a seisbench.models waveform model")
    return cls


def build_seisbench(architecture: str, hparams: dict[str, Any] | None = None) -> torch.nn.Module:
    return seisbench_class(architecture)(**(hparams or {}))


class SeisBenchServable:
    """A SeisBench WaveformModel behind the Servable interface (task "picking")."""

    def __init__(self, card: dict[str, Any], weights: bytes, device: torch.device):
        model = build_seisbench(card["architecture"], card.get("hyper_parameters"))
        model.load_state_dict(load_state(weights))
        self.module = model.to(device).eval()
        self.device = device
        self.memory_bytes = module_bytes(self.module)
        labels = model.labels if isinstance(model.labels, (list, tuple)) else list(model.labels)
        self.labels = [str(label) for label in labels]
        self.argdict = {k: v[1] for k, v in model._annotate_args.items() if isinstance(v, tuple)}
        self.spec = ServingSpec(
            task="picking",
            n_samples=int(model.in_samples),
            components=str(model.component_order),
            sampling_rate=float(model.sampling_rate),
            sequence_labels=",".join(self.labels),
            class_names=tuple(self.labels),
            outputs=("sequence",),
        )

    def run(self, x: np.ndarray, extras: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(x)).to(self.device, non_blocking=True)
            batch = self.module.annotate_batch_pre(batch, self.argdict)
            out = self.module(batch)
            out = self.module.annotate_batch_post(out, None, self.argdict)  # [N, L, K]
            return {"sequence": out.float().transpose(1, 2).contiguous().cpu().numpy()}
