"""The model store: versions, aliases and model cards (served by ModelRegistryService).

The registry's rows (names, versions with their cards, aliases) live in the metadata store; weights
stay in object storage. A new version's weights are stored first, under a key named by their sha256
(`models/<name>/weights/<sha256>.pt`, so a retried or concurrent upload writes the same bytes to the
same key), then the version's row is inserted with the next number: a version without its weights
never exists. Weights are verified by sha256 and loaded with `weights_only=True`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from quakestack.config import Settings
from quakestack.errors import FailedPrecondition, InvalidArgument, NotFound
from quakestack.layout import content_weights_key, model_prefix, validate_name
from quakestack.metadata.database import Database
from quakestack.metadata.registry import Registry
from quakestack.models.checkpoint import load_state
from quakestack.storage import ObjectStore


def is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts '¹' and other characters int() refuses."""
    return re.fullmatch(r"[0-9]+", text) is not None


class ModelStore:
    """Registry operations over the registry's rows and the weights in object storage."""

    def __init__(self, store: ObjectStore, db: Database):
        self.store = store
        self.registry = Registry(db)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelStore:
        """The registry a configured stack uses (its object store and metadata database)."""
        return cls(ObjectStore.from_settings(settings), Database.from_settings(settings))

    # -- reads --------------------------------------------------------------------------------
    def model_names(self, after: str | None = None, size: int | None = None) -> tuple[list[str], bool]:
        """Registered names in order (a page of them after `after`, when a size is given)."""
        return self.registry.names(after, size)

    def version_numbers(self, name: str) -> list[int]:
        return self.registry.version_numbers(validate_name(name, "model name"))

    def aliases(self, name: str) -> dict[str, int]:
        return self.registry.aliases(validate_name(name, "model name"))

    def card(self, name: str, version: int) -> dict[str, Any]:
        return self.registry.card(validate_name(name, "model name"), int(version))

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
        return self.registry.cards(validate_name(name, "model name"))

    def with_alias(self, alias: str) -> list[tuple[str, int]]:
        return self.registry.with_alias(alias)

    def weights(self, card: dict[str, Any]) -> bytes:
        data = self.store.get_bytes(card["weights_key"])
        if hashlib.sha256(data).hexdigest() != card["weights_sha256"]:
            raise FailedPrecondition(f"weights of {card['name']} v{card['version']} fail their sha256 check")
        return data

    # -- writes -------------------------------------------------------------------------------
    def register(self, name: str, weights: bytes, card: dict[str, Any], aliases: Iterable[str] = ()) -> dict:
        """Store the weights, then the version's row with its card and aliases; returns the card."""
        model_prefix(name)  # refuses a name that cannot be a model's
        aliases = [validate_name(a, "alias") for a in aliases]
        for alias in aliases:
            if is_number(alias):
                raise InvalidArgument(f"alias {alias!r} must not be a number (it would shadow a version)")
        digest = hashlib.sha256(weights).hexdigest()
        key = content_weights_key(name, digest)
        self.store.put_bytes(key, weights)
        version = self.registry.add_version(name, {**card, "weights_key": key, "weights_sha256": digest}, aliases)
        return self.card(name, version)

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, int]:
        validate_name(alias, "alias")
        if is_number(alias):
            raise InvalidArgument(f"alias {alias!r} must not be a number")
        self.registry.set_alias(name, alias, int(version))
        return self.aliases(name)

    def delete_alias(self, name: str, alias: str) -> dict[str, int]:
        self.registry.delete_alias(name, alias)
        return self.aliases(name)

    def delete_version(self, name: str, version: int) -> None:
        """The row first (the version stops existing, its aliases with it), then its weights when no other
        version uses the same object."""
        card = self.registry.delete_version(name, int(version))
        key = card.get("weights_key", "")
        if key and not self.registry.weights_shared(key):
            self.store.delete(key)


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

