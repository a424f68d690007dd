"""The search space on a real Optuna study (in memory): conditional parameters are sampled only when their
condition holds, a grid is every combination once, and the same seed and trial number draw the same values."""

from __future__ import annotations

import optuna
import pytest

from quakestack.errors import InvalidArgument
from quakestack.models.zoo import TRAINING_HYPER_PARAMETERS
from quakestack.sweeps import study as studies
from quakestack.sweeps.space import parse_space

DECLARED = {h.name: h for h in TRAINING_HYPER_PARAMETERS}
CONDITIONAL = [{"name": "optimizer", "type": "categorical", "choices": ["adam", "sgd"]},
               {"name": "momentum", "type": "float", "low": 0.5, "high": 0.99,
                "condition": {"parameter": "optimizer", "values": ["sgd"]}},
               {"name": "learning_rate", "type": "float", "low": 1e-4, "high": 1e-1, "log": True}]


def test_a_conditional_parameter_is_sampled_only_when_its_condition_holds() -> None:
    space = parse_space(CONDITIONAL, DECLARED, architecture="magnet")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        values = space.sample(trial)
        assert ("momentum" in values) == (values["optimizer"] == "sgd"), values
        assert 1e-4 <= values["learning_rate"] <= 1e-1
        seen.add(values["optimizer"])
        study.tell(trial, values["learning_rate"])
    assert seen == {"adam", "sgd"}


def test_a_grid_runs_every_combination_once() -> None:
    items = [{"name": "optimizer", "type": "categorical", "choices": ["adam", "adamw", "sgd"]},
             {"name": "batch_size", "type": "int", "low": 16, "high": 48, "step": 16},
             {"name": "gamma", "type": "float", "low": 0.1, "high": 0.3, "step": 0.1}]
    space = parse_space(items, DECLARED, architecture="magnet", grid=True)
    assert space.grid_size() == 3 * 3 * 3
    spec = {"sampler": "grid", "seed": 0, "max_trials": 27}
    study = optuna.create_study(sampler=studies.make_sampler(spec, 0, space.grid()))
    combos = set()
    for _ in range(27):
        trial = study.ask()
        values = space.sample(trial)
        combos.add((values["optimizer"], values["batch_size"], round(values["gamma"], 6)))
        studies.tell(study, trial, 1.0)  # the last one asks the study to stop; the trial is stored
    assert len(combos) == 27


def test_the_same_seed_and_trial_number_draw_the_same_values() -> None:
    space = parse_space(CONDITIONAL, DECLARED, architecture="magnet")
    spec = {"sampler": "random", "seed": 9, "max_trials": 5}

    def draws() -> list[dict]:
        study = optuna.create_study()
        out = []
        for number in range(5):
            study.sampler = studies.make_sampler(spec, number)
            trial = study.ask()
            out.append(space.sample(trial))
            study.tell(trial, 0.0)
        return out

    assert draws() == draws()


@pytest.mark.parametrize(("items", "field"), [
    ([{"name": "learning_rate", "type": "float", "low": 0.0, "high": 0.1, "log": True}], "search_space[0].low"),
    ([{"name": "learning_rate", "type": "float", "low": 0.1, "high": 0.01}], "search_space[0]: low"),
    ([{"name": "batch_size", "type": "float", "low": 8, "high": 64}], "search_space[0].type"),
    ([{"name": "optimizer", "type": "categorical", "choices": ["adam", "lion"]}], "search_space[0].choices[1]"),
    ([{"name": "gamma", "type": "float", "low": 0.1, "high": 0.5},
      {"name": "gamma", "type": "float", "low": 0.1, "high": 0.5}], "search_space[1].name"),
    ([CONDITIONAL[1]], "search_space[0].condition.parameter"),
])
def test_bad_spaces_name_the_field(items, field) -> None:
    with pytest.raises(InvalidArgument, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_space(items, DECLARED, architecture="magnet")
