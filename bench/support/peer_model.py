"""The registered model as the serving peers run it (MLServer's runtime, PyTriton's infer_fn).

Imports only torch, numpy and quakestack's model zoo (pure torch), so it runs in the peers' own
virtualenvs (``.venv-mlserver``, ``.venv-pytriton``) with the repository root on ``sys.path``. A model
folder holds ``card.json`` and ``weights.pt`` exactly as the registry stores them; the peers build the
same module from the same card and weights, and apply the card's normalisation as the service does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from quakestack.models.checkpoint import load_state  # noqa: E402
from quakestack.models.zoo import build_model  # noqa: E402

CARD, WEIGHTS = "card.json", "weights.pt"


def normalize(x: np.ndarray, mode: str) -> np.ndarray:
    """``quakestack.data.preprocess.normalize`` (that module imports ObsPy, which the peers' envs lack)."""
    if mode == "none":
        return x
    y = x - x.mean(axis=-1, keepdims=True)
    if mode == "std":
        scale = y.std(axis=-1, keepdims=True).max(axis=-2, keepdims=True)
    elif mode == "peak":
        scale = np.abs(y).max(axis=-1, keepdims=True).max(axis=-2, keepdims=True)
    else:
        raise ValueError(f"normalization {mode!r} is not served by the peers")
    return (y / np.where(scale > 0, scale, 1.0)).astype(x.dtype, copy=False)


class PeerModel:
    """One magnitude model: windows [N, C, L] float32 in, ``magnitude`` [N, 1] float32 out."""

    def __init__(self, folder: str | Path, torch_threads: int):
        torch.set_num_threads(max(1, torch_threads))  # the same setting as the quakestack server's
        folder = Path(folder)
        card = json.loads((folder / CARD).read_text())
        module, _, spec = build_model(card["architecture"], card.get("hyper_parameters") or {})
        self.n_channels, self.n_samples = spec.n_channels, spec.n_samples
        module.load_state_dict(load_state((folder / WEIGHTS).read_bytes()))
        self.module = module.eval()
        self.normalization = str(card.get("normalization") or "none")

    def run(self, x: np.ndarray) -> np.ndarray:
        x = normalize(np.asarray(x, dtype=np.float32), self.normalization)
        with torch.inference_mode():
            out = self.module(torch.from_numpy(np.ascontiguousarray(x)), None)
        return out["magnitude"].float().numpy().reshape(-1, 1)
