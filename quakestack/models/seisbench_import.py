"""Import a SeisBench model (the JSON and `.pt` that ``model.save`` writes) as a registry version.

SeisBench's JSON does not name its class, so the caller does; everything else is checked before anything is
stored, each failure an INVALID_ARGUMENT that says what to fix: the class must be one the trainer can
fine-tune, the JSON must parse and its model_args must build that class, the weights must load with the
weights-only unpickler (a truncated file does not) and fit that architecture exactly, and a given sha256
must match. The version's card is the one the SeisBench adapter serves: ``seisbench:<Class>``.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import torch

from quakestack.errors import InvalidArgument
from quakestack.models.checkpoint import load_state
from quakestack.models.seisbench_pickers import for_class, supported_classes

SHOWN_KEYS = 4  # missing/unexpected keys named in an error


def parse_config(text: str, class_name: str) -> dict[str, Any]:
    """The JSON as a dict with a ``model_args`` object; a ``model_class`` key, if any, must name the class."""
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"the model's JSON does not parse: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_args", {}), dict):
        raise InvalidArgument("the model's JSON must be an object with a model_args object (as SeisBench's save "
                              "writes it)")
    named = config.get("model_class")
    if named is not None and str(named).rsplit(".", 1)[-1] != class_name:
        raise InvalidArgument(f"the JSON names model_class {named!r} but the import says {class_name!r}")
    return config


def build(class_name: str, model_args: dict[str, Any]) -> torch.nn.Module:
    """The plain SeisBench model these model_args describe (also checks they can be fine-tuned here)."""
    try:
        spec = for_class(class_name)
    except KeyError as exc:
        raise InvalidArgument(str(exc.args[0])) from None
    import seisbench.models as sbm

    try:
        spec.hparams_from_model_args(model_args)
        return getattr(sbm, spec.seisbench_class)(**model_args)
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidArgument(f"{class_name} rejects the JSON's model_args: {exc}") from None


def check_weights(model: torch.nn.Module, data: bytes, class_name: str) -> None:
    """The weights load weights-only and are exactly this architecture's state_dict."""
    try:
        state = load_state(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any unreadable file (truncated, not torch, code-running) is the user's
        raise InvalidArgument(f"the weights file does not load with torch.load(weights_only=True) "
                              f"({len(data)} bytes; truncated?): {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InvalidArgument("the weights file is not a state_dict (a mapping of names to tensors)")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        parts = [f"{len(keys)} {what} key(s) ({_few(keys)})"
                 for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong-shape", shapes)) if keys]
        raise InvalidArgument(f"the weights are not a {class_name} with these model_args: " + "; ".join(parts))


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:SHOWN_KEYS]) + (", ..." if len(keys) > SHOWN_KEYS else "")


def import_card(class_name: str, config_text: str, data: bytes, sha256: str = "") -> dict[str, Any]:
    """Check an upload and return the version's card (weights are the uploaded bytes, stored as-is)."""
    if not class_name:
        raise InvalidArgument(f"seisbench_class is required; supported: {', '.join(supported_classes())}")
    config = parse_config(config_text, class_name)
    digest = hashlib.sha256(data).hexdigest()
    if sha256 and sha256.lower() != digest:
        raise InvalidArgument(f"the weights' sha256 is {digest}, not {sha256}")
    model_args = dict(config.get("model_args") or {})
    model = build(class_name, model_args)
    check_weights(model, data, class_name)
    spec = for_class(class_name)
    return {"architecture": spec.card_architecture, "task": "picking", "hyper_parameters": model_args,
            "training_hyper_parameters": {},
            "input_spec": {"n_samples": int(model.in_samples), "components": str(model.component_order),
                           "sampling_rate": float(model.sampling_rate), "extra_inputs": []},
            "class_names": [], "normalization": "none", "dataset": "", "dataset_manifest_sha256": "",
            "source": {}, "metrics": {}, "zoo_architecture": spec.name,
            "provenance": {"source": "imported", "file_sha256": digest,
                           "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
                           "docstring": str(config.get("docstring") or "")[:4000],
                           "seisbench_requirement": str(config.get("seisbench_requirement") or ""),
                           "default_args": config.get("default_args") or {}}}
