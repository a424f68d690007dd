"""Which servable a model card asks for: zoo architectures by name, ``seisbench:<Class>`` through SeisBench."""

from __future__ import annotations

from typing import Any

import torch

from quakestack.inference.servables.base import Servable
from quakestack.inference.servables.seisbench import PREFIX, SeisBenchServable
from quakestack.inference.servables.zoo import ZooServable


def build_servable(card: dict[str, Any], weights: bytes, device: torch.device) -> Servable:
    """The servable for ``card``, its weights loaded onto ``device``."""
    if str(card.get("architecture", "")).startswith(PREFIX):
        return SeisBenchServable(card, weights, device)
    return ZooServable(card, weights, device)
