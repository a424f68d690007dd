"""A sweep's spec, resolved and checked once at creation (the controller takes it as-is).

The fixed hyper-parameters go through the training job's own validation (a trial is an ordinary training job),
the search space through `space.parse_space` against the architecture's declared bounds, and the objective
against the metrics the architecture reports each epoch.
"""

from __future__ import annotations

import math
from typing import Any

from quakestack.errors import InvalidArgument
from quakestack.metadata.datasets import DatasetCatalog
from quakestack.models.zoo import get_architecture
from quakestack.storage import ObjectStore, validate_name
from quakestack.sweeps.space import SearchParameter, Space, parse_space
from quakestack.training.jobs import JOB_HYPER_PARAMETERS, build_spec

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none", "hyperband")
LOSSES = ("val_loss", "train_loss")
MAX_TRIALS = 1000
MAX_PARALLEL = 64


def objective_metrics(architecture: str) -> list[str]:
    """What a sweep may optimise: the losses and the architecture's scalar epoch metrics."""
    spec = get_architecture(architecture)
    return [*LOSSES, *(m for m in spec.metrics if m != "confusion_matrix")]


def objective_value(event: dict[str, Any], metric: str) -> float | None:
    """The objective in one epoch event; None when the epoch lacks it or it is not a finite number."""
    raw = event.get(metric) if metric in ("val_loss", "train_loss") else (event.get("metrics") or {}).get(metric)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def build_sweep_spec(store: ObjectStore, catalog: DatasetCatalog, *, dataset: str, architecture: str,
                     hyper_parameters: dict[str, Any], search_space: list[dict[str, Any]],
                     objective: dict[str, Any], sampler: str, pruner: str, limits: dict[str, Any],
                     enqueued: list[dict[str, Any]], seed: int, pruner_startup_trials: int,
                     pruner_warmup_epochs: int, register_best: dict[str, Any], device: str, display_name: str,
                     gpu_count: int) -> dict[str, Any]:
    if sampler not in SAMPLERS:
        raise InvalidArgument(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if pruner not in PRUNERS:
        raise InvalidArgument(f"pruner must be one of {', '.join(PRUNERS)}, got {pruner!r}")
    # a trial with the fixed values alone must be a valid training job (dataset, architecture, ranges, device)
    base = build_spec(store, catalog, dataset=dataset, architecture=architecture, values=dict(hyper_parameters),
                      device=device, display_name=display_name, gpu_count=gpu_count)
    arch = get_architecture(base["architecture"])
    declared = {h.name: h for h in (*arch.hyper_parameters, *JOB_HYPER_PARAMETERS)}
    space = parse_space(search_space, declared, architecture=arch.name, grid=sampler == "grid")
    fixed_and_searched = sorted(set(hyper_parameters) & set(space.names))
    if fixed_and_searched:
        raise InvalidArgument(f"hyper_parameters: {', '.join(fixed_and_searched)} both fixed and searched")
    metric = str(objective.get("metric") or "")
    valid = objective_metrics(arch.name)
    if metric not in valid:
        raise InvalidArgument(f"objective.metric: {metric or 'nothing'!r} is not a metric {arch.name} reports; "
                              f"valid: {', '.join(valid)}")
    target = objective.get("target")
    if target is not None and not math.isfinite(float(target)):
        raise InvalidArgument("objective.target must be a finite number")
    enqueued = [check_enqueued(values, space, declared, f"enqueued_trials[{i}]") for i, values in enumerate(enqueued)]
    epochs = int(base["epochs"])
    if not 0 <= pruner_warmup_epochs < epochs:
        raise InvalidArgument(f"pruner_warmup_epochs must be in [0, {epochs - 1}] (epochs is {epochs})")
    if pruner_startup_trials < 0:
        raise InvalidArgument("pruner_startup_trials must be >= 0")
    if seed < 0:
        raise InvalidArgument("seed must be >= 0")
    if register_best.get("model_name"):
        validate_name(register_best["model_name"], "register_best.model_name")
        for alias in register_best.get("aliases", []):
            validate_name(alias, "register_best.aliases")
    max_trials = limits.get("max_trials") or (space.grid_size() if sampler == "grid" else 10)
    control = check_limits({"max_trials": max_trials, "parallel_trials": limits.get("parallel_trials") or 1,
                            "max_failures": limits.get("max_failures") or 3,
                            "time_budget_s": float(limits.get("time_budget_s") or 0.0)})
    return {"dataset": base["dataset"], "dataset_manifest_sha256": base["dataset_manifest_sha256"],
            "architecture": arch.name, "hyper_parameters": dict(hyper_parameters),
            "resolved_hyper_parameters": {**base["hyper_parameters"], **base["training_hyper_parameters"]},
            "search_space": [p.to_dict() for p in space.parameters],
            "objective": {"metric": metric, "direction": objective.get("direction") or "minimize",
                          "target": None if target is None else float(target)},
            "sampler": sampler, "pruner": pruner, "seed": int(seed), "epochs": epochs,
            "pruner_startup_trials": int(pruner_startup_trials), "pruner_warmup_epochs": int(pruner_warmup_epochs),
            "register_best": {"model_name": register_best.get("model_name", ""),
                              "aliases": list(register_best.get("aliases", []))},
            "device": device, "display_name": display_name, "enqueued": enqueued, "limits": control}


def check_limits(limits: dict[str, Any], started: int = 0) -> dict[str, Any]:
    """Trial limit, parallelism, failures and budget within bounds; INVALID_ARGUMENT naming the field."""
    max_trials, parallel = int(limits["max_trials"]), int(limits["parallel_trials"])
    if not 1 <= max_trials <= MAX_TRIALS:
        raise InvalidArgument(f"max_trials must be in [1, {MAX_TRIALS}], got {max_trials}")
    if max_trials < started:
        raise InvalidArgument(f"max_trials {max_trials} is below the {started} trials already started")
    if not 1 <= parallel <= MAX_PARALLEL:
        raise InvalidArgument(f"parallel_trials must be in [1, {MAX_PARALLEL}], got {parallel}")
    if int(limits["max_failures"]) < 1:
        raise InvalidArgument(f"max_failures must be >= 1, got {limits['max_failures']}")
    budget = float(limits["time_budget_s"])
    if budget < 0 or not math.isfinite(budget):
        raise InvalidArgument(f"time_budget_s must be >= 0, got {budget:g}")
    return {"max_trials": max_trials, "parallel_trials": parallel, "max_failures": int(limits["max_failures"]),
            "time_budget_s": budget}


def check_enqueued(values: dict[str, Any], space: Space, declared: dict[str, Any], where: str) -> dict[str, Any]:
    """A hand-enqueued trial: only searched names, each valid for its declaration."""
    if not values:
        raise InvalidArgument(f"{where}: give the searched hyper-parameters' values")
    out = {}
    by_name = {p.name: p for p in space.parameters}
    for name, value in values.items():
        if name not in by_name:
            raise InvalidArgument(f"{where}.{name}: not a searched hyper-parameter; searched: "
                                  f"{', '.join(space.names)}")
        try:
            out[name] = declared[name].validate(value)
        except ValueError as exc:
            raise InvalidArgument(f"{where}.{name}: {exc}") from None
        _within(by_name[name], out[name], f"{where}.{name}")
    return out


def _within(parameter: SearchParameter, value: Any, where: str) -> None:
    if parameter.type == "categorical":
        if value not in parameter.choices:
            raise InvalidArgument(f"{where}: {value!r} is not one of the searched choices")
    elif not parameter.low <= float(value) <= parameter.high:
        raise InvalidArgument(f"{where}: {value} is outside the searched range [{parameter.low:g}, "
                              f"{parameter.high:g}]")


def space_of(spec: dict[str, Any]) -> Space:
    return Space([SearchParameter.from_dict(p) for p in spec["search_space"]])
