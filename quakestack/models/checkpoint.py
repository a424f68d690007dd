"""Checkpoints are plain state dicts loaded with ``torch.load(weights_only=True)``: loading never runs code.

``save_state`` refuses anything the weights-only unpickler could not read back (numpy arrays are turned
into tensors first), so a checkpoint that saves also loads. ``training_state`` / ``restore_training_state``
bundle model, optimizer, scheduler and RNG states (torch, CUDA, numpy, python ``random``) for resuming.
"""

from __future__ import annotations

import io
import os
import random
from collections import OrderedDict
from collections.abc import Mapping
from typing import IO, Any

import numpy as np
import torch
from torch import nn

PathOrBuffer = str | os.PathLike[str] | IO[bytes]
_SCALARS = (str, bytes, int, float, bool, type(None), torch.dtype, torch.device, torch.Size)


def _sanitize(value: Any, where: str) -> Any:
    """Return ``value`` with numpy converted to tensors/scalars; raise TypeError on anything else unsafe."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        out: dict[Any, Any] = OrderedDict() if isinstance(value, OrderedDict) else {}
        for key, item in value.items():
            out[key] = _sanitize(item, f"{where}.{key}")
        if isinstance(out, OrderedDict) and hasattr(value, "_metadata"):
            out._metadata = value._metadata  # type: ignore[attr-defined]  # module versions for load_state_dict
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_sanitize(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    raise TypeError(
        f"checkpoint value at {where} has type {type(value).__name__}, which weights_only loading cannot read"
    )


def save_state(path_or_buffer: PathOrBuffer, state: Mapping[str, Any]) -> None:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) with torch.save."""
    clean = _sanitize(dict(state), "state")
    if isinstance(path_or_buffer, (str, os.PathLike)):
        tmp = f"{os.fspath(path_or_buffer)}.tmp"
        torch.save(clean, tmp)
        os.replace(tmp, path_or_buffer)  # never leave a half-written checkpoint behind
    else:
        torch.save(clean, path_or_buffer)


def load_state(path_or_buffer: PathOrBuffer | bytes, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with the weights-only unpickler; a code-running pickle raises UnpicklingError."""
    if isinstance(path_or_buffer, (bytes, bytearray)):
        path_or_buffer = io.BytesIO(path_or_buffer)
    return torch.load(path_or_buffer, map_location=map_location, weights_only=True)


def state_to_bytes(state: Mapping[str, Any]) -> bytes:
    """Serialise to bytes (for object storage)."""
    buffer = io.BytesIO()
    save_state(buffer, state)
    return buffer.getvalue()


def rng_state() -> dict[str, Any]:
    """torch / CUDA / numpy / python RNG states as tensors and plain values."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "algorithm": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {
            "version": py_version,
            "internal": torch.tensor(py_internal, dtype=torch.int64),
            "gauss_next": py_gauss,
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what ``rng_state`` captured."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(
        (n["algorithm"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel, so keys carry no ``module.`` prefix."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


def training_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    *,
    epoch: int = 0,
    include_rng: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """Everything needed to resume a job, in a weights_only-loadable form (tensors moved to CPU)."""
    state: dict[str, Any] = {
        "format": "quakestack.checkpoint/1",
        "epoch": int(epoch),
        "model": {k: v.detach().cpu() for k, v in _unwrap(model).state_dict().items()},
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    if include_rng:
        state["rng"] = rng_state()
    state.update(extra)
    return state


def restore_training_state(
    state: Mapping[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    *,
    restore_rng: bool = True,
) -> int:
    """Load states saved by ``training_state`` into live objects; returns the saved epoch."""
    _unwrap(model).load_state_dict(state["model"])
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    if restore_rng and "rng" in state:
        set_rng_state(state["rng"])
    return int(state.get("epoch", 0))
