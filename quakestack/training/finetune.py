"""Fine-tuning a registered version: its weights as the starting point, its model_args as the job's, and the
options fine-tuning needs (a frozen encoder, a lower learning rate for the pretrained layers).

A job names its starting version once, at creation; the spec keeps the version's weights key and sha256, so
the worker loads exactly those bytes before epoch 1 (never on resume: the checkpoint holds the state then).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from quakestack.errors import FailedPrecondition, InvalidArgument
from quakestack.models.checkpoint import load_state
from quakestack.models.seisbench_pickers import FREEZE_CHOICES, zoo_architecture
from quakestack.models.spec import ArchitectureSpec, HyperParameter, InputSpec
from quakestack.storage import ObjectStore

FINETUNE_HYPER_PARAMETERS: tuple[HyperParameter, ...] = (
    HyperParameter("freeze", "choice", "none", choices=FREEZE_CHOICES,
                   description="layers left out of training: none, or the encoder (its BatchNorm statistics too)"),
    HyperParameter("pretrained_lr_factor", "float", 1.0, 0.0, 1.0,
                   description="learning-rate multiplier for every layer but the output head"),
)


def uses_parameter_groups(train_hp: Mapping[str, Any]) -> bool:
    return train_hp.get("freeze", "none") != "none" or float(train_hp.get("pretrained_lr_factor", 1.0)) != 1.0


def check_options(spec: ArchitectureSpec, train_hp: Mapping[str, Any]) -> None:
    """freeze / pretrained_lr_factor only for architectures that define parameter groups."""
    if uses_parameter_groups(train_hp) and not getattr(spec, "supports_parameter_groups", False):
        raise InvalidArgument(f"freeze and pretrained_lr_factor need an architecture with parameter groups; "
                              f"{spec.name} has none (use seisbench_phasenet or seisbench_eqtransformer)")


def optimizer_parameters(model: nn.Module, hp: Mapping[str, Any]) -> Iterable[Any]:
    """What the optimizer trains: the model's parameter groups when fine-tuning options are set, else all."""
    if not uses_parameter_groups(hp):
        return model.parameters()
    groups = getattr(model, "parameter_groups", None)
    if groups is None:
        raise ValueError(f"{type(model).__name__} defines no parameter groups for freeze/pretrained_lr_factor")
    return groups(float(hp["learning_rate"]), float(hp.get("pretrained_lr_factor", 1.0)),
                  str(hp.get("freeze", "none")))


def starting_point(card: Mapping[str, Any], ref: str, architecture: str,
                   requested_hp: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The job's architecture and architecture hyper-parameters from its starting version; a different
    architecture, or an architecture hyper-parameter the version's weights cannot take, is INVALID_ARGUMENT."""
    try:
        zoo_name, hparams = zoo_architecture(card)
    except (KeyError, ValueError) as exc:
        raise InvalidArgument(f"initial model {ref} cannot be fine-tuned: {exc.args[0]}") from None
    if architecture and architecture != zoo_name:
        raise InvalidArgument(f"initial model {ref} is {card['architecture']} (architecture {zoo_name}); "
                              f"the job asks for {architecture}")
    for name, value in requested_hp.items():
        if name in hparams and str(value) != str(hparams[name]):
            raise InvalidArgument(f"initial model {ref} has {name}={hparams[name]!r}; the job asks for "
                                  f"{name}={value!r}")
    return zoo_name, {**hparams, **requested_hp}


def check_dataset_fits(ref: str, dataset: str, input_spec: InputSpec, manifest: Mapping[str, Any]) -> None:
    """A starting version takes its own sampling rate and window: a dataset that cannot give them is refused
    naming both (a job from scratch gets the same check as FAILED_PRECONDITION)."""
    rate, length = float(manifest["sampling_rate"]), int(manifest["window_length_samples"])
    if abs(rate - input_spec.sampling_rate) > 1e-6:
        raise InvalidArgument(f"initial model {ref} takes {input_spec.sampling_rate:g} Hz; dataset {dataset!r} "
                              f"is {rate:g} Hz")
    if length < input_spec.n_samples:
        raise InvalidArgument(f"initial model {ref} takes {input_spec.n_samples}-sample windows; dataset "
                              f"{dataset!r} has {length}-sample windows")


def initial_record(name: str, card: Mapping[str, Any]) -> dict[str, Any]:
    """What the job's spec keeps of its starting version: enough to load and verify its weights later."""
    return {"name": name, "version": int(card["version"]), "architecture": card["architecture"],
            "weights_key": card["weights_key"], "weights_sha256": card["weights_sha256"]}


def initial_weights(store: ObjectStore, spec: Mapping[str, Any]) -> dict[str, torch.Tensor] | None:
    """The starting version's state_dict (sha256-checked, weights-only), or None for a job from scratch."""
    initial = spec.get("initial_model")
    if not initial:
        return None
    data = store.get_bytes(initial["weights_key"])
    if hashlib.sha256(data).hexdigest() != initial["weights_sha256"]:
        raise FailedPrecondition(f"weights of initial model {initial['name']} v{initial['version']} fail their "
                                 "sha256 check")
    return load_state(data)
