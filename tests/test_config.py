"""Declared parameters: one parser, one message style naming `<where>.<key>`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from pixelheal.config import parse, require, to_block


@dataclass(frozen=True)
class Inner:
    rate: float = 0.5

    def __post_init__(self) -> None:
        require(0 <= self.rate <= 1, "rate", f"must lie in [0, 1], got {self.rate}")


@dataclass(frozen=True)
class Block:
    epochs: int
    kind: Literal["a", "b"] = "a"
    widths: tuple[int, ...] = (4, 8)
    betas: tuple[float, float] = (0.9, 0.999)
    weights: dict[str, float] = field(default_factory=dict)
    budget: float | None = None
    flip: bool = True
    inner: Inner = field(default_factory=Inner)


def test_a_valid_block_becomes_the_dataclass_with_tuples_and_floats():
    cfg = parse(Block, {"epochs": 3, "widths": [1, 2, 3], "betas": [0, 1], "budget": 5, "inner": {"rate": 1}}, "x")
    assert cfg == Block(epochs=3, widths=(1, 2, 3), betas=(0.0, 1.0), budget=5.0, inner=Inner(1.0))
    assert isinstance(cfg.budget, float) and isinstance(cfg.betas[0], float)


def test_to_block_round_trips():
    cfg = parse(Block, {"epochs": 3, "weights": {"l1": 2}}, "x")
    assert parse(Block, to_block(cfg), "x") == cfg
    assert to_block(cfg)["widths"] == [4, 8]


@pytest.mark.parametrize(
    "block, message",
    [
        ({"epoch": 3}, "x.epoch: unknown parameter; valid: ['epochs', 'kind', "),
        ({}, "x.epochs: required parameter is missing"),
        ({"epochs": "abc"}, "x.epochs: expected an integer, got 'abc'"),
        ({"epochs": 2.5}, "x.epochs: expected an integer, got 2.5"),
        ({"epochs": True}, "x.epochs: expected an integer, got True"),
        ({"epochs": 1, "kind": "c"}, "x.kind: expected one of ['a', 'b'], got 'c'"),
        ({"epochs": 1, "widths": [1, "w"]}, "x.widths[1]: expected an integer, got 'w'"),
        ({"epochs": 1, "betas": [0.5]}, "x.betas: expected a list of 2 values, got [0.5]"),
        ({"epochs": 1, "weights": {"l1": "heavy"}}, "x.weights.l1: expected a number, got 'heavy'"),
        ({"epochs": 1, "budget": "soon"}, "x.budget: expected a number or null, got 'soon'"),
        ({"epochs": 1, "flip": "yes"}, "x.flip: expected true or false, got 'yes'"),
        ({"epochs": 1, "inner": {"rate": 2}}, "x.inner.rate: must lie in [0, 1], got 2.0"),
        ({"epochs": 1, "inner": {"speed": 2}}, "x.inner.speed: unknown parameter; valid: ['rate']"),
        ([1, 2], "x: expected a mapping with keys ['epochs', "),
    ],
)
def test_every_error_is_one_line_naming_the_key(block, message):
    with pytest.raises(ValueError) as error:
        parse(Block, block, "x")
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)
