"""Declared parameters: frozen dataclasses built from parameter blocks, checked once, in one message style.

A parameter block (a mapping read from YAML or `--params`) becomes a dataclass through
`parse(cls, block, where)`: unknown keys are refused with the list of valid ones, missing required
keys are named, every value is checked against its field's type hint (int, float, bool, str,
`Literal[...]` choices, tuples, mappings, `X | None`, nested dataclasses), and the dataclass's own
`__post_init__` checks ranges with `require(condition, key, message)`. Every message names the key
as the user wrote it: `<where>.<key>: <what is wrong>`, e.g. `unet_frm.model.widths: ...`.

This module knows nothing of Kedro, models or training: every layer declares its parameters with it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


class ConfigError(ValueError):
    """An invalid parameter; `key` is its path below the block being parsed (e.g. "widths")."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key, self.detail = key, message


@contextmanager
def named(where: str) -> Iterator[None]:
    """Library errors name their own argument (`output_dir`); the user wrote `<where>.output_dir`."""
    try:
        yield
    except ConfigError as error:
        raise ValueError(f"{where}.{error.key}: {error.detail}") from error


def require(condition: bool, key: str, message: str) -> None:
    """Raise ConfigError naming `key` unless `condition` holds (for `__post_init__` range checks)."""
    if not condition:
        raise ConfigError(key, message)


def field_names(cls: type) -> list[str]:
    """The keys a parameter block of `cls` may hold, in declaration order."""
    return [f.name for f in dataclasses.fields(cls) if f.init]


def parse(cls: type[T], block: Any, where: str) -> T:
    """The dataclass `cls` built from the mapping `block`; every error names `<where>.<key>`."""
    try:
        return _build(cls, block)
    except ConfigError as error:
        raise ValueError(f"{where}.{error.key}: {error.detail}" if error.key else f"{where}: {error.detail}") from None


def _build(cls: type[T], block: Any) -> T:
    """`parse` with errors keyed relative to `block`."""
    if isinstance(block, cls):
        return block
    names = field_names(cls)
    require(isinstance(block, Mapping), "", f"expected a mapping with keys {names}, got {block!r}")
    unknown = sorted(str(key) for key in block if key not in names)
    require(not unknown, unknown[0] if unknown else "", f"unknown parameter; valid: {names}")
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        require(not (f.init and required and f.name not in block), f.name, "required parameter is missing")
    hints = _hints(cls)
    return cls(**{name: coerce(hints[name], value, name) for name, value in block.items()})


def split_kind(block: Any, where: str, valid: Sequence[str], what: str) -> tuple[str, dict[str, Any]]:
    """(kind, the other keys) of a block whose `kind` picks what the rest declares (a source, a mask generator)."""
    require(isinstance(block, Mapping), where, f"expected a mapping with a 'kind' key, got {block!r}")
    params = dict(block)
    require("kind" in params, f"{where}.kind", f"required parameter is missing; valid: {list(valid)}")
    kind = params.pop("kind")
    require(isinstance(kind, str) and kind in valid, f"{where}.kind", f"unknown {what} {kind!r}; valid: {list(valid)}")
    return kind, params


def to_block(config: Any) -> dict[str, Any]:
    """A parsed config back as a plain parameter block (tuples as lists), e.g. for a checkpoint."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return f"one of {list(args)}"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if hint is type(None):
        return "null"
    if origin is tuple:
        return "a list"
    if origin in (dict, Mapping) or hint is dict:
        return "a mapping"
    if dataclasses.is_dataclass(hint):
        return f"a mapping with keys {field_names(hint)}"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def coerce(hint: Any, value: Any, key: str) -> Any:
    """`value` checked against the type `hint` (lists become tuples where a tuple is declared)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        for arg in args:
            try:
                return coerce(arg, value, key)
            except ConfigError:
                continue
        raise ConfigError(key, f"expected {_describe(hint)}, got {value!r}")
    if hint is type(None):
        require(value is None, key, f"expected null, got {value!r}")
        return None
    if origin is Literal:
        require(
            any(value == arg and type(value) is type(arg) for arg in args),
            key,
            f"expected one of {list(args)}, got {value!r}",
        )
        return value
    if dataclasses.is_dataclass(hint):
        try:
            return _build(hint, value)
        except ConfigError as error:
            raise ConfigError(f"{key}.{error.key}" if error.key else key, error.detail) from None
    if origin is tuple:
        require(isinstance(value, Sequence) and not isinstance(value, str), key, f"expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(args[0], item, f"{key}[{i}]") for i, item in enumerate(value))
        require(len(value) == len(args), key, f"expected a list of {len(args)} values, got {value!r}")
        return tuple(coerce(arg, item, f"{key}[{i}]") for i, (arg, item) in enumerate(zip(args, value)))
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        require(isinstance(value, Mapping), key, f"expected a mapping, got {value!r}")
        if not args:
            return dict(value)
        return {coerce(args[0], k, key): coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        require(isinstance(value, bool), key, f"expected true or false, got {value!r}")
        return value
    if hint is int:
        require(isinstance(value, int) and not isinstance(value, bool), key, f"expected an integer, got {value!r}")
        return int(value)
    if hint is float:
        require(
            isinstance(value, (int, float)) and not isinstance(value, bool), key, f"expected a number, got {value!r}"
        )
        return float(value)
    if hint is str:
        require(isinstance(value, str), key, f"expected a string, got {value!r}")
        return value
    return value  # other declared types (e.g. a callable or a module) are the caller's own objects
