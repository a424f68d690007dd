"""Hyper-parameter validation: ranges, kinds, unknown names, unknown architectures."""

from __future__ import annotations

import inspect

import pytest

from quakestack.models import (
    TRAINING_HYPER_PARAMETERS,
    HyperParameter,
    build_model,
    get_architecture,
    resolve_hparams,
    resolve_training_hparams,
)
from quakestack.models.seisbench_pickers import SeisBenchArchitecture
from quakestack.models.zoo import ARCHITECTURES


def test_out_of_range_names_field_and_range() -> None:
    with pytest.raises(ValueError, match=r"^dropout must be in \[0, 0.9\], got 1.5$"):
        build_model("magnet", {"dropout": 1.5})
    with pytest.raises(ValueError, match=r"n_layers must be in \[1, 12\], got 40"):
        resolve_hparams(get_architecture("convnetquake_ingv"), {"n_layers": 40})


def test_choice_and_kind_errors() -> None:
    with pytest.raises(ValueError, match=r"graph_layer must be one of \[gcn, cheb, .*\], got 'spline'"):
        build_model("eqgraphnet", {"graph_layer": "spline"})
    with pytest.raises(ValueError, match=r"n_samples must be one of \[3000, 6000\], got 4000"):
        build_model("magnet", {"n_samples": 4000})
    with pytest.raises(ValueError, match="lstm_hidden must be an int"):
        build_model("magnet", {"lstm_hidden": 2.5})
    with pytest.raises(ValueError, match="amplitude_input must be true or false"):
        build_model("convnetquake_ingv", {"amplitude_input": "maybe"})


def test_unknown_hyper_parameter_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown hyper-parameter for magnet 'lstm_units'; valid: .*lstm_hidden"):
        build_model("magnet", {"lstm_units": 8})


def test_strings_are_coerced() -> None:
    """Hyper-parameters arriving as protobuf/JSON strings are accepted and typed."""
    _, hp, spec = build_model("magnet", {"n_samples": "6000", "dropout": "0.1", "lstm_hidden": "8"})
    assert hp["n_samples"] == 6000 and hp["dropout"] == 0.1 and hp["lstm_hidden"] == 8
    assert spec.n_samples == 6000
    assert resolve_training_hparams({"mixed_precision": "true"})["mixed_precision"] is True


def test_unknown_architecture_lists_names() -> None:
    with pytest.raises(KeyError, match="unknown architecture 'phasenet2'; known: .*convnetquake.*magnet"):
        get_architecture("phasenet2")
    with pytest.raises(KeyError, match="known:"):
        build_model("nope")


def test_training_hyper_parameters() -> None:
    names = {hp.name for hp in TRAINING_HYPER_PARAMETERS}
    assert {
        "learning_rate",
        "weight_decay",
        "batch_size",
        "epochs",
        "optimizer",
        "scheduler",
        "early_stopping_patience",
        "seed",
        "mixed_precision",
        "num_gpus",
    } <= names
    defaults = resolve_training_hparams()
    assert defaults["optimizer"] == "adam" and defaults["scheduler"] == "none"
    assert resolve_training_hparams({"optimizer": "adamw", "epochs": 3})["epochs"] == 3
    with pytest.raises(ValueError, match=r"learning_rate must be in \[1e-07, 1\], got 5"):
        resolve_training_hparams({"learning_rate": 5})
    with pytest.raises(ValueError, match=r"scheduler must be one of \[none, cosine, step, plateau\]"):
        resolve_training_hparams({"scheduler": "cyclic"})
    with pytest.raises(ValueError, match="unknown training hyper-parameter 'lr'"):
        resolve_training_hparams({"lr": 0.1})


def test_invalid_default_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="x must be in"):
        HyperParameter("x", "int", 50, 0, 10)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_hyper_parameter_defaults_are_declared_once(name: str) -> None:
    """A model-shaping hyper-parameter reaches the constructor by name; the constructor keeps no default of it."""
    spec = get_architecture(name)
    model = spec.build(spec.default_hparams())
    constructor = inspect.signature(type(model)).parameters
    if isinstance(spec, SeisBenchArchitecture):  # SeisBench's constructor: the table must repeat its defaults
        mirrored = {hp.name: hp.default for hp in spec.hyper_parameters if hp.name in constructor}
        assert mirrored and all(constructor[k].default == v for k, v in mirrored.items()), mirrored
        return
    shaping = [hp.name for hp in spec.hyper_parameters if hp.name in constructor]
    assert shaping, f"{name}: no hyper-parameter reaches the constructor"
    with_defaults = [p for p in shaping if constructor[p].default is not inspect.Parameter.empty]
    assert not with_defaults, f"{name}: constructor repeats the defaults of {with_defaults}"
