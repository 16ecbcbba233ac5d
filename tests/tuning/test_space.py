"""Search spaces: parsed from parameter blocks, sampled by Optuna, written back as parameter values."""

from __future__ import annotations

import optuna
import pytest

from pixelheal.config import ConfigError
from pixelheal.tuning import decode, parse_space, substitute, suggest
from pixelheal.tuning.space import Choice, FloatRange, IntRange, LogFloatRange

SPACE = {
    "training": {
        "lr": {"kind": "log_float", "low": 1e-4, "high": 1e-2},
        "epochs": {"kind": "int", "low": 1, "high": 3},
    },
    "model": {
        "widths": {"kind": "categorical", "choices": [[4, 8], [8, 16, 32]]},
        "hole_weight": {"kind": "float", "low": 1, "high": 2, "step": 0.5},
        "loss_weights": {"l1": {"kind": "categorical", "choices": [10.0, 100.0]}},
    },
}


def test_a_nested_space_gives_one_distribution_per_dotted_path():
    space = parse_space(SPACE)
    assert space == {
        "training.lr": LogFloatRange(1e-4, 1e-2),
        "training.epochs": IntRange(1, 3),
        "model.widths": Choice(([4, 8], [8, 16, 32])),
        "model.hole_weight": FloatRange(1.0, 2.0, 0.5),
        "model.loss_weights.l1": Choice((10.0, 100.0)),
    }


@pytest.mark.parametrize(
    "block, problem",
    [
        ({}, r"^space: expected a mapping of hyper-parameter paths"),
        ({"training": {"lr": 0.1}}, r"^space\.training\.lr: expected a block with a kind"),
        ({"training": {"lr": {"kind": "normal"}}}, r"^space\.training\.lr\.kind: unknown distribution 'normal'"),
        ({"training": {"lr": {"kind": "float", "low": 2, "high": 1}}}, r"^space\.training\.lr\.high: must be above"),
        ({"training": {"lr": {"kind": "log_float", "low": 0, "high": 1}}}, r"^space\.training\.lr\.low: must be posi"),
        (
            {"training": {"epochs": {"kind": "int", "low": 1.5, "high": 3}}},
            r"^space\.training\.epochs\.low: expected an",
        ),
        (
            {"model": {"hidden": {"kind": "categorical", "choices": []}}},
            r"^space\.model\.hidden\.choices: give at least",
        ),
        (
            {"model": {"hidden": {"kind": "categorical", "choices": [8, 8]}}},
            r"^space\.model\.hidden\.choices: must be dis",
        ),
        ({"model": {"hidden": {"kind": "int", "low": 1, "high": 3, "lo": 0}}}, r"^space\.model\.hidden\.lo: unknown"),
    ],
)
def test_an_invalid_space_names_the_path(block, problem):
    with pytest.raises(ConfigError, match=problem):
        parse_space(block)


def test_sampled_values_lie_in_their_distributions_and_round_trip_through_the_storage():
    space = parse_space(SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(8):
        trial = study.ask()
        values = suggest(trial, space)
        study.tell(trial, 0.0)
        assert 1e-4 <= values["training.lr"] <= 1e-2
        assert values["training.epochs"] in (1, 2, 3)
        assert values["model.widths"] in ([4, 8], [8, 16, 32])  # a list choice comes back as the list
        assert values["model.hole_weight"] in (1.0, 1.5, 2.0)
        assert decode(study.trials[-1].params, space) == values  # as stored, decoded
    assert {tuple(decode(t.params, space)["model.widths"]) for t in study.trials} == {(4, 8), (8, 16, 32)}


def test_substitute_sets_every_path_in_a_copy():
    blocks = {"model": {"kind": "gan", "widths": [4, 8]}, "training": {"lr": 0.1}}
    values = {"model.widths": [8, 16], "model.loss_weights.l1": 10.0, "training.lr": 0.01}
    result = substitute(blocks, values)
    assert result == {
        "model": {"kind": "gan", "widths": [8, 16], "loss_weights": {"l1": 10.0}},
        "training": {"lr": 0.01},
    }
    assert blocks == {"model": {"kind": "gan", "widths": [4, 8]}, "training": {"lr": 0.1}}
    result["model"]["widths"].append(32)
    assert values["model.widths"] == [8, 16]  # no value is shared with the result


def test_substitute_refuses_a_path_through_a_value():
    with pytest.raises(ConfigError, match=r"^model\.widths\.first: model\.widths is a value, not a block"):
        substitute({"model": {"widths": [4, 8]}}, {"model.widths.first": 2})
