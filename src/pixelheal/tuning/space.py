"""A search space declared in parameters: one distribution per hyper-parameter path, sampled by an Optuna trial.

A space is a nested mapping whose leaves are distribution blocks (mappings with a `kind`):

    training: {lr: {kind: log_float, low: 1.0e-4, high: 1.0e-2}}
    model: {widths: {kind: categorical, choices: [[4, 8, 16], [8, 16, 32]]}}

A leaf's dotted path (`training.lr`) is the Optuna parameter's name and the key it replaces in a
copy of the blocks a trial trains with (`substitute`). Optuna stores only plain categorical
choices (numbers, strings, booleans, null); other choices (lists, mappings) are stored as their
JSON text and decoded back, so a trial's parameters can always be written back as parameters.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from pixelheal.config import coerce, require, split_kind

_PLAIN = (type(None), bool, int, float, str)  # the choice types Optuna stores as they are


@dataclass(frozen=True)
class _Range:
    """Values between `low` and `high`, both included."""

    low: float
    high: float

    def __post_init__(self) -> None:
        require(self.low < self.high, "high", f"must be above low = {self.low}, got {self.high}")

    def candidates(self) -> tuple[Any, ...]:
        """The values the pre-flight check tries: the range's ends."""
        return (self.low, self.high)

    def decode(self, stored: Any) -> Any:
        return stored


@dataclass(frozen=True)
class FloatRange(_Range):
    """A float drawn uniformly from [low, high], on a grid of `step` when given."""

    step: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.step is None or self.step > 0, "step", f"must be positive or null, got {self.step}")

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, step=self.step)


@dataclass(frozen=True)
class LogFloatRange(_Range):
    """A positive float drawn uniformly in log space from [low, high] (learning rates, loss weights)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.low > 0, "low", f"must be positive on a log scale, got {self.low}")

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)


@dataclass(frozen=True)
class IntRange(_Range):
    """An integer drawn from low, low + step, ... up to high."""

    low: int
    high: int
    step: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.step >= 1, "step", f"must be at least 1, got {self.step}")

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step)


@dataclass(frozen=True)
class Choice:
    """One of `choices`, any parameter values (a list such as `model.widths` included)."""

    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        require(len(self.choices) >= 1, "choices", "give at least one choice")
        stored = self._stored()
        require(len(set(stored)) == len(stored), "choices", f"must be distinct, got {list(self.choices)}")

    def _stored(self) -> list[Any]:
        return [c if isinstance(c, _PLAIN) else json.dumps(c, sort_keys=True) for c in self.choices]

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return self.decode(trial.suggest_categorical(name, self._stored()))

    def candidates(self) -> tuple[Any, ...]:
        return self.choices

    def decode(self, stored: Any) -> Any:
        """The choice Optuna stored as `stored` (a copy: the caller may change it)."""
        return copy.deepcopy(dict(zip(self._stored(), self.choices))[stored])


Distribution = _Range | Choice
DISTRIBUTIONS: dict[str, type[Distribution]] = {
    "float": FloatRange,
    "log_float": LogFloatRange,
    "int": IntRange,
    "categorical": Choice,
}


def parse_space(block: Any, key: str = "space") -> dict[str, Distribution]:
    """Every distribution of a space block by its dotted path; ConfigError keys start with `key`."""
    require(isinstance(block, Mapping) and block, key, f"expected a mapping of hyper-parameter paths, got {block!r}")
    space: dict[str, Distribution] = {}
    for name, value in block.items():
        path = f"{key}.{name}"
        require(isinstance(value, Mapping), path, f"expected a block with a kind in {list(DISTRIBUTIONS)}")
        if "kind" not in value:
            space |= {f"{name}.{inner}": d for inner, d in parse_space(value, path).items()}
            continue
        kind, params = split_kind(value, path, list(DISTRIBUTIONS), "distribution")
        space[str(name)] = coerce(DISTRIBUTIONS[kind], params, path)
    return space


def suggest(trial: optuna.Trial, space: Mapping[str, Distribution]) -> dict[str, Any]:
    """The trial's value for every path of `space`."""
    return {path: distribution.suggest(trial, path) for path, distribution in space.items()}


def decode(params: Mapping[str, Any], space: Mapping[str, Distribution]) -> dict[str, Any]:
    """A finished trial's stored parameters as parameter values (paths no longer in `space` as stored)."""
    return {path: space[path].decode(value) if path in space else value for path, value in params.items()}


def substitute(blocks: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `blocks` with each dotted path of `values` set (missing inner blocks are added).

    Raises ConfigError keyed by the path when a part of it is a value, not a block.
    """
    result = copy.deepcopy(dict(blocks))
    for path, value in values.items():
        *parents, leaf = path.split(".")
        node = result
        for depth, part in enumerate(parents):
            inner = node.setdefault(part, {})
            require(isinstance(inner, dict), path, f"{'.'.join(parents[: depth + 1])} is a value, not a block")
            node = inner
        node[leaf] = copy.deepcopy(value)
    return result
