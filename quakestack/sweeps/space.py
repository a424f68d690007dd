"""A sweep's search space: parsed and checked once against the architecture's declared hyper-parameters, then
sampled define-by-run through an Optuna trial (so conditional parameters need no special sampler).

Every error names the field (`search_space[2].high`) and the declared range it broke, so a request is refused
before any trial runs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna

from quakestack.errors import InvalidArgument
from quakestack.models.spec import HyperParameter

TYPES = ("float", "int", "categorical")
UNSEARCHABLE = ("epochs", "num_gpus", "seed")  # the resource Hyperband counts, the hardware, the trial's seed
MAX_GRID = 10_000


@dataclass(frozen=True)
class Condition:
    parameter: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SearchParameter:
    """One searched hyper-parameter, already checked (see `parse_space`)."""

    name: str
    type: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float = 0.0
    choices: tuple[Any, ...] = ()
    condition: Condition | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["choices"] = list(self.choices)
        out["condition"] = None if self.condition is None else {"parameter": self.condition.parameter,
                                                                "values": list(self.condition.values)}
        return out

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> SearchParameter:
        cond = value.get("condition")
        return cls(name=value["name"], type=value["type"], low=float(value.get("low", 0.0)),
                   high=float(value.get("high", 0.0)), log=bool(value.get("log", False)),
                   step=float(value.get("step", 0.0)), choices=tuple(value.get("choices", ())),
                   condition=None if not cond else Condition(cond["parameter"], tuple(cond["values"])))

    def applies(self, params: dict[str, Any]) -> bool:
        """Whether the parameter is searched, given the values sampled before it."""
        if self.condition is None:
            return True
        value = params.get(self.condition.parameter)
        return any(_same(value, v) for v in self.condition.values)

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step or None, log=self.log)

    def grid_values(self) -> list[Any]:
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]


@dataclass
class Space:
    parameters: list[SearchParameter] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's values, in order; a parameter whose condition fails is not sampled (its default holds)."""
        params: dict[str, Any] = {}
        for parameter in self.parameters:
            if parameter.applies(params):
                params[parameter.name] = parameter.suggest(trial)
        return params

    def grid(self) -> dict[str, list[Any]]:
        return {p.name: p.grid_values() for p in self.parameters}

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values()) if self.parameters else 0


def _same(a: Any, b: Any) -> bool:
    return a == b or (not isinstance(a, bool) and not isinstance(b, bool) and str(a) == str(b))


def parse_space(items: list[dict[str, Any]], declared: dict[str, HyperParameter], *, architecture: str,
                grid: bool = False) -> Space:
    """Check every searched parameter against its declaration; INVALID_ARGUMENT naming the field otherwise."""
    if not items:
        raise InvalidArgument("search_space: give at least one hyper-parameter to search")
    seen: dict[str, SearchParameter] = {}
    for index, item in enumerate(items):
        where = f"search_space[{index}]"
        parameter = _parse_one(item, declared, where, architecture)
        if parameter.name in seen:
            raise InvalidArgument(f"{where}.name: {parameter.name!r} is searched twice")
        if parameter.condition is not None:
            _check_condition(parameter.condition, seen, where)
            if grid:
                raise InvalidArgument(f"{where}.condition: the GRID sampler searches every combination; a "
                                      "conditional space needs RANDOM or TPE")
        if grid and parameter.type == "float" and not parameter.step:
            raise InvalidArgument(f"{where}.step: the GRID sampler needs a step for float {parameter.name!r}")
        seen[parameter.name] = parameter
    space = Space(list(seen.values()))
    if grid and space.grid_size() > MAX_GRID:
        raise InvalidArgument(f"search_space: the grid has {space.grid_size()} combinations (at most {MAX_GRID})")
    return space


def _parse_one(item: dict[str, Any], declared: dict[str, HyperParameter], where: str,
               architecture: str) -> SearchParameter:
    name = str(item.get("name") or "")
    if not name:
        raise InvalidArgument(f"{where}.name is required")
    if name in UNSEARCHABLE:
        raise InvalidArgument(f"{where}.name: {name!r} cannot be searched (set it in hyper_parameters)")
    spec = declared.get(name)
    if spec is None:
        raise InvalidArgument(f"{where}.name: {name!r} is not a hyper-parameter of {architecture} or of training; "
                              f"valid: {', '.join(sorted(n for n in declared if n not in UNSEARCHABLE))}")
    kind = str(item.get("type") or "")
    if kind not in TYPES:
        raise InvalidArgument(f"{where}.type must be FLOAT, INT or CATEGORICAL, got {kind or 'nothing'}")
    cond = item.get("condition") or None
    condition = None
    if cond and cond.get("parameter"):
        condition = Condition(str(cond["parameter"]), tuple(cond.get("values") or ()))
        if not condition.values:
            raise InvalidArgument(f"{where}.condition.values: give the values of {condition.parameter!r} for which "
                                  f"{name!r} is searched")
    if kind == "categorical":
        return _categorical(name, item, spec, where, condition)
    return _numeric(name, kind, item, spec, where, condition)


def _categorical(name: str, item: dict[str, Any], spec: HyperParameter, where: str,
                 condition: Condition | None) -> SearchParameter:
    raw = list(item.get("choices") or [])
    if not raw:
        raise InvalidArgument(f"{where}.choices: a categorical parameter needs choices")
    choices = []
    for i, value in enumerate(raw):
        try:
            choices.append(spec.validate(value))
        except ValueError as exc:
            raise InvalidArgument(f"{where}.choices[{i}]: {exc}") from None
    if len(set(map(repr, choices))) != len(choices):
        raise InvalidArgument(f"{where}.choices: values repeat")
    return SearchParameter(name, "categorical", choices=tuple(choices), condition=condition)


def _numeric(name: str, kind: str, item: dict[str, Any], spec: HyperParameter, where: str,
             condition: Condition | None) -> SearchParameter:
    if spec.kind not in ("int", "float"):
        raise InvalidArgument(f"{where}.type: {name!r} is a {spec.kind} ({spec.range_text()}); search it as "
                              "CATEGORICAL")
    if kind == "float" and spec.kind == "int":
        raise InvalidArgument(f"{where}.type: {name!r} is an int; search it as INT")
    low, high = float(item.get("low", 0.0)), float(item.get("high", 0.0))
    step, log = float(item.get("step") or 0.0), bool(item.get("log"))
    for label, value in (("low", low), ("high", high)):
        if not math.isfinite(value):
            raise InvalidArgument(f"{where}.{label} must be a finite number")
        try:
            spec.validate(int(value) if kind == "int" and float(value).is_integer() else value)
        except ValueError:
            raise InvalidArgument(f"{where}.{label}: {name} must be in {spec.range_text()} (its declared bounds), "
                                  f"got {value:g}") from None
    if not low < high:
        raise InvalidArgument(f"{where}: low ({low:g}) must be below high ({high:g})")
    if kind == "int" and not (low.is_integer() and high.is_integer()):
        raise InvalidArgument(f"{where}: low and high of int {name!r} must be whole numbers")
    if step < 0 or (kind == "int" and step and not step.is_integer()):
        raise InvalidArgument(f"{where}.step must be a positive {'whole ' if kind == 'int' else ''}number")
    if log and low <= 0:
        raise InvalidArgument(f"{where}.low must be > 0 on a log scale, got {low:g}")
    if log and step and not (kind == "int" and step == 1):
        raise InvalidArgument(f"{where}: a log scale takes no step")
    return SearchParameter(name, kind, low=low, high=high, log=log, step=step, condition=condition)


def _check_condition(condition: Condition, seen: dict[str, SearchParameter], where: str) -> None:
    parent = seen.get(condition.parameter)
    if parent is None:
        raise InvalidArgument(f"{where}.condition.parameter: {condition.parameter!r} is not searched before this "
                              "parameter (list it earlier in search_space)")
    if parent.type == "categorical":
        for i, value in enumerate(condition.values):
            if not any(_same(value, c) for c in parent.choices):
                raise InvalidArgument(f"{where}.condition.values[{i}]: {value!r} is not one of "
                                      f"{condition.parameter}'s choices")
