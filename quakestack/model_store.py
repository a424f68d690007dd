"""The model store on object storage: versions, aliases and model cards (served by ModelRegistryService).

Layout (DESIGN.md): `models/<name>/<version>/model.pt` (a plain state_dict) and `model.json` (the
card: architecture, hyper-parameters, input spec, dataset lineage, metrics), plus
`models/<name>/aliases.json`. The card is written last, so a version without its card does not
exist; weights are verified by sha256 and loaded with `weights_only=True`.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from quakestack.errors import FailedPrecondition, InvalidArgument, NotFound
from quakestack.layout import (
    MODELS_PREFIX,
    aliases_key,
    card_key,
    model_prefix,
    validate_name,
    version_prefix,
    weights_key,
)
from quakestack.models.checkpoint import load_state
from quakestack.protoconv import utc_now_iso
from quakestack.storage import ObjectStore


def is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts '¹' and other characters int() refuses."""
    return re.fullmatch(r"[0-9]+", text) is not None


class ModelStore:
    """Registry operations; one lock serialises version numbering and alias edits in this process."""

    def __init__(self, store: ObjectStore):
        self.store = store
        self._lock = threading.Lock()

    # -- reads --------------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        return list(self.store.list_dirs(MODELS_PREFIX))

    def version_numbers(self, name: str) -> list[int]:
        dirs = self.store.list_dirs(model_prefix(name))
        numbers = sorted(int(d) for d in dirs if is_number(d))
        return [n for n in numbers if self.store.exists(card_key(name, n))]

    def aliases(self, name: str) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in self.store.get_json(aliases_key(name)).items()}
        except NotFound:
            return {}

    def card(self, name: str, version: int) -> dict[str, Any]:
        try:
            card = self.store.get_json(card_key(name, version))
        except NotFound:
            raise NotFound(f"model {name!r} has no version {version}") from None
        aliases = self.aliases(name)
        card["aliases"] = sorted(a for a, v in aliases.items() if v == int(version))
        return card

    def resolve(self, name: str, version: str | int = "") -> int:
        """A version number from '', a number, or an alias ('' is the latest version)."""
        text = str(version).strip()
        numbers = self.version_numbers(name)
        if not numbers:
            raise NotFound(f"model {name!r} is not registered")
        if not text:
            return numbers[-1]
        if is_number(text):
            if int(text) not in numbers:
                raise NotFound(f"model {name!r} has no version {text}; versions: {numbers}")
            return int(text)
        aliases = self.aliases(name)
        if text not in aliases:
            raise NotFound(f"model {name!r} has no alias {text!r}; aliases: {sorted(aliases)}")
        return aliases[text]

    def get(self, name: str, version: str | int = "") -> dict[str, Any]:
        return self.card(name, self.resolve(name, version))

    def versions(self, name: str) -> list[dict[str, Any]]:
        return [self.card(name, n) for n in self.version_numbers(name)]

    def weights(self, card: dict[str, Any]) -> bytes:
        data = self.store.get_bytes(card["weights_key"])
        if hashlib.sha256(data).hexdigest() != card["weights_sha256"]:
            raise FailedPrecondition(f"weights of {card['name']} v{card['version']} fail their sha256 check")
        return data

    # -- writes -------------------------------------------------------------------------------
    def register(self, name: str, weights: bytes, card: dict[str, Any], aliases: Iterable[str] = ()) -> dict:
        """Store weights, then the card (last), then move the aliases; returns the card."""
        model_prefix(name)  # refuses a name that cannot be a model's
        aliases = [validate_name(a, "alias") for a in aliases]
        for alias in aliases:
            if is_number(alias):
                raise InvalidArgument(f"alias {alias!r} must not be a number (it would shadow a version)")
        with self._lock:
            existing = self.store.list_dirs(model_prefix(name))
            version = max((int(d) for d in existing if is_number(d)), default=0) + 1
            digest = self.store.put_bytes(weights_key(name, version), weights)
            card = {**card, "name": name, "version": version, "weights_key": weights_key(name, version),
                    "weights_sha256": digest, "create_time": utc_now_iso()}
            card.pop("aliases", None)
            self.store.put_json(card_key(name, version), card)
            if aliases:
                self._edit_aliases(name, {a: version for a in aliases})
        return self.card(name, version)

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, int]:
        validate_name(alias, "alias")
        if is_number(alias):
            raise InvalidArgument(f"alias {alias!r} must not be a number")
        if int(version) not in self.version_numbers(name):
            raise NotFound(f"model {name!r} has no version {version}")
        with self._lock:
            return self._edit_aliases(name, {alias: int(version)})

    def delete_alias(self, name: str, alias: str) -> dict[str, int]:
        with self._lock:
            if alias not in self.aliases(name):
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            return self._edit_aliases(name, {alias: None})

    def delete_version(self, name: str, version: int) -> None:
        """Card first (the version stops existing), then weights; aliases pointing at it go too."""
        if int(version) not in self.version_numbers(name):
            raise NotFound(f"model {name!r} has no version {version}")
        with self._lock:
            self.store.delete(card_key(name, version))
            self.store.delete_prefix(version_prefix(name, version))
            stale = {a: None for a, v in self.aliases(name).items() if v == int(version)}
            if stale:
                self._edit_aliases(name, stale)

    def _edit_aliases(self, name: str, changes: dict[str, int | None]) -> dict[str, int]:
        aliases = self.aliases(name)
        for alias, version in changes.items():
            if version is None:
                aliases.pop(alias, None)
            else:
                aliases[alias] = version
        self.store.put_json(aliases_key(name), aliases)
        return aliases


def model_card(architecture: str, hyper_parameters: dict[str, Any], *, dataset: str, source: dict[str, Any],
               training_hyper_parameters: dict[str, Any] | None = None, normalization: str = "none",
               dataset_manifest_sha256: str = "", metrics: dict[str, Any] | None = None,
               p_offset_s: float | None = None, reproducibility: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card (model.json) of a version: what serving needs to rebuild the model and feed it."""
    from quakestack.models.zoo import get_architecture

    spec = get_architecture(architecture)
    resolved = spec.resolve_hparams(hyper_parameters)
    return {"architecture": spec.name, "task": spec.task.value, "hyper_parameters": resolved,
            "training_hyper_parameters": training_hyper_parameters or {},
            "input_spec": spec.input_spec_for(resolved).to_dict(), "class_names": list(spec.class_names),
            "normalization": normalization, "dataset": dataset, "dataset_manifest_sha256": dataset_manifest_sha256,
            "source": source, "metrics": metrics or {}, "p_offset_s": p_offset_s,
            "reproducibility": reproducibility or {}}


def instantiate(card: dict[str, Any], weights: bytes, device: str | torch.device = "cpu") -> nn.Module:
    """Build the card's architecture and load its weights; a checkpoint never executes code."""
    from quakestack.models.zoo import build_model

    model, _, _ = build_model(card["architecture"], card.get("hyper_parameters") or {})
    model.load_state_dict(load_state(weights))
    return model.to(device).eval()

