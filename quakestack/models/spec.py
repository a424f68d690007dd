"""Declarative description of an architecture: task, inputs, outputs, loss, metrics, hyper-parameters.

Services never import a model class: they read an :class:`ArchitectureSpec` (to validate a request, to
describe the model in the registry, to pick the loss and metrics) and call its ``build``. Keeping the
description as data is what makes "adding an architecture = one module + one registry entry" true.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from torch import nn


class Task(str, Enum):
    """What a model predicts; it decides the targets, the loss family and the metrics."""

    MAGNITUDE = "magnitude"  # regression of source magnitude
    DETECTION = "detection"  # event vs noise, optionally a location cluster (ConvNetQuake)
    CLASSIFICATION = "classification"  # earthquake / explosion / noise
    PICKING = "picking"  # P / S / noise probability per sample (PhaseNet)

    def __str__(self) -> str:
        return self.value


HP_KINDS = ("int", "float", "choice", "bool")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class HyperParameter:
    """One tunable knob with its default and valid range, so requests are checked before a job starts.

    ``validate`` also coerces strings (hyper-parameters arrive as protobuf/JSON strings) to the kind.
    """

    name: str
    kind: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in HP_KINDS:
            raise ValueError(f"hyper-parameter {self.name}: kind must be one of {HP_KINDS}, got {self.kind!r}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"hyper-parameter {self.name}: a choice needs choices")
        self.validate(self.default)  # a spec with an invalid default is a programming error

    def range_text(self) -> str:
        """Human-readable valid range, used in error messages and API descriptions."""
        if self.kind == "choice":
            return "one of [" + ", ".join(str(c) for c in self.choices) + "]"
        if self.kind == "bool":
            return "true or false"
        lo = "-inf" if self.minimum is None else _fmt(self.minimum)
        hi = "inf" if self.maximum is None else _fmt(self.maximum)
        return f"[{lo}, {hi}]"

    def validate(self, value: Any) -> Any:
        """Return ``value`` coerced to this kind; raise ``ValueError`` naming the field and its range."""
        if self.kind == "bool":
            return self._as_bool(value)
        if self.kind == "choice":
            return self._as_choice(value)
        number = self._as_number(value)
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum):
            raise ValueError(f"{self.name} must be in {self.range_text()}, got {_fmt(number)}")
        return number

    def _as_bool(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"{self.name} must be true or false, got {value!r}")

    def _as_choice(self, value: Any) -> Any:
        for choice in self.choices:
            if value == choice or (not isinstance(value, bool) and str(value) == str(choice)):
                return choice
        raise ValueError(f"{self.name} must be {self.range_text()}, got {value!r}")

    def _as_number(self, value: Any) -> int | float:
        if isinstance(value, bool):
            raise ValueError(f"{self.name} must be {'an int' if self.kind == 'int' else 'a float'}, got {value!r}")
        try:
            number = float(value) if isinstance(value, str) else value
            if not isinstance(number, (int, float)) or math.isnan(number):
                raise TypeError
        except (TypeError, ValueError):
            raise ValueError(
                f"{self.name} must be {'an int' if self.kind == 'int' else 'a float'} "
                f"in {self.range_text()}, got {value!r}"
            ) from None
        if self.kind == "int":
            if float(number) != int(number):
                raise ValueError(f"{self.name} must be an int in {self.range_text()}, got {value!r}")
            return int(number)
        return float(number)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description for APIs and model.json."""
        return {
            "name": self.name,
            "kind": self.kind,
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices),
            "description": self.description,
        }


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


@dataclass(frozen=True)
class InputSpec:
    """Shape and meaning of a model input: windows of ``n_samples`` per component, plus scalar extras."""

    n_samples: int
    components: str = "ZNE"
    sampling_rate: float = 100.0
    extra_inputs: tuple[str, ...] = ()

    @property
    def n_channels(self) -> int:
        return len(self.components)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sampling_rate

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_samples": self.n_samples,
            "components": self.components,
            "sampling_rate": self.sampling_rate,
            "extra_inputs": list(self.extra_inputs),
        }


@dataclass(frozen=True)
class ArchitectureSpec:
    """Everything a service needs to know about an architecture without importing its class."""

    name: str
    task: Task
    description: str
    input_spec: InputSpec
    outputs: tuple[str, ...]
    loss: str
    metrics: tuple[str, ...]
    hyper_parameters: tuple[HyperParameter, ...]
    labels_required: tuple[str, ...]
    build: Callable[[dict[str, Any]], nn.Module] = field(repr=False, compare=False)
    reference: str = ""
    class_names: tuple[str, ...] = ()  # order of the logits for detection / classification

    def __post_init__(self) -> None:
        names = [hp.name for hp in self.hyper_parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"architecture {self.name}: duplicate hyper-parameter names {names}")

    def hyper_parameter(self, name: str) -> HyperParameter:
        for hp in self.hyper_parameters:
            if hp.name == name:
                return hp
        raise KeyError(name)

    def default_hparams(self) -> dict[str, Any]:
        return {hp.name: hp.default for hp in self.hyper_parameters}

    def resolve_hparams(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return resolve_hparams(self, overrides)

    def input_spec_for(self, hparams: Mapping[str, Any]) -> InputSpec:
        """Input spec after hyper-parameters that change it (``n_samples``, ``sampling_rate``)."""
        changes: dict[str, Any] = {}
        if "n_samples" in hparams:
            changes["n_samples"] = int(hparams["n_samples"])
        if "sampling_rate" in hparams:
            changes["sampling_rate"] = float(hparams["sampling_rate"])
        return dataclasses.replace(self.input_spec, **changes)

    def loss_for(self, hparams: Mapping[str, Any]) -> str:
        """Loss name after a ``loss`` hyper-parameter, where the architecture offers one."""
        return str(hparams.get("loss", self.loss))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (ListArchitectures, model.json)."""
        return {
            "name": self.name,
            "task": self.task.value,
            "description": self.description,
            "input_spec": self.input_spec.to_dict(),
            "outputs": list(self.outputs),
            "loss": self.loss,
            "metrics": list(self.metrics),
            "hyper_parameters": [hp.to_dict() for hp in self.hyper_parameters],
            "labels_required": list(self.labels_required),
            "reference": self.reference,
            "class_names": list(self.class_names),
        }


def construct(model_class: type[nn.Module], hparams: Mapping[str, Any], **fixed: Any) -> nn.Module:
    """``model_class`` built from the hyper-parameters its constructor names, plus ``fixed`` arguments.

    Defaults live once, in the architecture's ``HyperParameter`` table: constructors take them as
    required keyword arguments, so nothing copies a key by hand and nothing can drift.
    Hyper-parameters the constructor does not name (training ones, ``loss``) are left out.
    """
    accepted = inspect.signature(model_class).parameters
    arguments = {name: value for name, value in hparams.items() if name in accepted}
    return model_class(**{**arguments, **fixed})


def resolve_params(
    params: tuple[HyperParameter, ...], overrides: Mapping[str, Any] | None, what: str = "hyper-parameter"
) -> dict[str, Any]:
    """Defaults updated by ``overrides``; unknown names and out-of-range values raise ``ValueError``."""
    by_name = {hp.name: hp for hp in params}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(by_name))
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(map(repr, unknown))}; valid: {', '.join(sorted(by_name))}")
    resolved = {hp.name: hp.default for hp in params}
    for name, value in overrides.items():
        resolved[name] = by_name[name].validate(value)
    return resolved


def resolve_hparams(spec: ArchitectureSpec, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Architecture defaults updated by validated ``overrides``."""
    return resolve_params(spec.hyper_parameters, overrides, what=f"hyper-parameter for {spec.name}")


# Shared declarations used by several architectures.
MAGNITUDE_METRICS = ("rmse", "mae", "r2", "residual_mean", "residual_std")
DETECTION_METRICS = ("precision", "recall", "f1", "accuracy", "confusion_matrix", "cluster_accuracy")
CLASSIFICATION_METRICS = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "f1_per_class",
    "confusion_matrix",
)
PICKING_METRICS = ("p_precision", "p_recall", "p_f1", "p_residual_mean", "p_residual_std", "s_precision",
                   "s_recall", "s_f1", "s_residual_mean", "s_residual_std")  # residuals in samples
DETECTION_CLASSES = ("noise", "event")
EVENT_CLASSES = ("earthquake", "explosion", "noise")


def n_samples_hp(default: int, choices: tuple[int, ...], description: str = "") -> HyperParameter:
    """Input window length as a hyper-parameter, for architectures that allow several."""
    return HyperParameter(
        "n_samples",
        "choice",
        default,
        choices=choices,
        description=description or "window length in samples (input spec)",
    )
