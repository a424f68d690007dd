"""Registering small, briefly trained models the way the trainer's RegisterModel does."""

from __future__ import annotations

import io
from typing import Any

import grpc
import numpy as np
import torch

from quakestack.model_store import ModelStore, model_card
from quakestack.models.zoo import build_model
from quakestack.v1 import common_pb2, inference_pb2

TINY_MAGNITUDE = {"n_samples": 1000, "n_layers": 5, "channels": 8}


def state_bytes(model: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def briefly_trained(architecture: str, hparams: dict[str, Any], steps: int = 3, seed: int = 0) -> torch.nn.Module:
    """A few optimizer steps on random data: real trained weights, fast."""
    torch.manual_seed(seed)
    model, resolved, spec = build_model(architecture, hparams)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        x = torch.randn(8, spec.n_channels, spec.n_samples) * 100
        out = model(x)
        loss = sum(v.float().pow(2).mean() for v in out.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def card_for(architecture: str, hparams: dict[str, Any], normalization: str = "none", **extra: Any) -> dict:
    card = model_card(architecture, hparams, dataset="synthetic", source={"job_id": "test", "epoch": 1},
                      training_hyper_parameters={"epochs": 1}, normalization=normalization)
    return {**card, **extra}


def register(registry: ModelStore, name: str, architecture: str, hparams: dict[str, Any], *,
             normalization: str = "none", aliases=(), seed: int = 0, model: torch.nn.Module | None = None,
             **extra: Any) -> tuple[dict, torch.nn.Module]:
    model = model or briefly_trained(architecture, hparams, seed=seed)
    card = registry.register(name, state_bytes(model), card_for(architecture, hparams, normalization, **extra),
                             aliases)
    return card, model


def windows_pb(x: np.ndarray, rate: float = 100.0, components: str = "ZNE") -> common_pb2.Waveforms:
    return common_pb2.Waveforms(data=np.ascontiguousarray(x, dtype="<f4").tobytes(), shape=list(x.shape),
                                sampling_rate_hz=rate, component_order=components)


def predict_request(model: str, x: np.ndarray, **kw: Any) -> inference_pb2.PredictRequest:
    return inference_pb2.PredictRequest(model=model, windows=windows_pb(x, **kw))


def rpc_code(fn) -> grpc.StatusCode:
    try:
        fn()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK
