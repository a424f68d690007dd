"""The model zoo: the architectures the platform knows, and the training hyper-parameters common to every job.

Adding an architecture: write one module exposing ``ARCHITECTURE`` and add it to ``_MODULES`` (a module with
several, as ``seisbench_pickers``, exposes ``ARCHITECTURES``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from quakestack.models import (
    convnetquake,
    convnetquake_ingv,
    creime,
    eqgraphnet,
    event_classifier,
    maginfonet,
    magnet,
    phasenet,
    seisbench_pickers,
)
from quakestack.models.spec import ArchitectureSpec, HyperParameter, InputSpec, resolve_params

_MODULES = (magnet, eqgraphnet, maginfonet, creime, convnetquake_ingv, convnetquake, event_classifier,
            phasenet)
_SPECS: tuple[ArchitectureSpec, ...] = (*(m.ARCHITECTURE for m in _MODULES), *seisbench_pickers.ARCHITECTURES)
ARCHITECTURES: dict[str, ArchitectureSpec] = {spec.name: spec for spec in _SPECS}


def list_architectures() -> list[ArchitectureSpec]:
    return list(ARCHITECTURES.values())


def get_architecture(name: str) -> ArchitectureSpec:
    """Spec by name; an unknown name raises KeyError listing the known ones."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}") from None


def build_model(name: str, hparams: Mapping[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any], InputSpec]:
    """Build ``name`` with validated hyper-parameters; returns (model, resolved hparams, input spec)."""
    spec = get_architecture(name)
    resolved = spec.resolve_hparams(hparams)
    return spec.build(resolved), resolved, spec.input_spec_for(resolved)


TRAINING_HYPER_PARAMETERS: tuple[HyperParameter, ...] = (
    HyperParameter("learning_rate", "float", 5e-4, 1e-7, 1.0, description="optimizer step size"),
    HyperParameter("weight_decay", "float", 5e-4, 0.0, 1.0, description="L2 penalty / decoupled decay (adamw)"),
    HyperParameter("batch_size", "int", 64, 1, 4096, description="windows per batch (per GPU)"),
    HyperParameter("epochs", "int", 20, 1, 10000, description="passes over the training split"),
    HyperParameter("optimizer", "choice", "adam", choices=("adam", "adamw", "sgd"), description="optimizer"),
    HyperParameter("momentum", "float", 0.9, 0.0, 1.0, description="SGD momentum"),
    HyperParameter(
        "scheduler",
        "choice",
        "none",
        choices=("none", "cosine", "step", "plateau"),
        description="learning-rate schedule",
    ),
    HyperParameter("step_size", "int", 10, 1, 10000, description="epochs between decays (step scheduler)"),
    HyperParameter("gamma", "float", 0.1, 1e-4, 1.0, description="decay factor (step and plateau schedulers)"),
    HyperParameter(
        "early_stopping_patience",
        "int",
        0,
        0,
        10000,
        description="epochs without validation improvement before stopping (0 = never)",
    ),
    HyperParameter("seed", "int", 0, 0, 2**31 - 1, description="seed for torch, numpy and python random"),
    HyperParameter("mixed_precision", "bool", False, description="autocast bf16/fp16 on GPU"),
    HyperParameter("num_gpus", "int", 0, 0, 64, description="GPUs for this job (0 = CPU); >1 uses torchrun DDP"),
)


def resolve_training_hparams(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Training defaults updated by validated ``overrides`` (same rules as architecture hyper-parameters)."""
    return resolve_params(TRAINING_HYPER_PARAMETERS, overrides, what="training hyper-parameter")
