"""Every parameter block a run reads, and every `--params` key, checked before its first node: one line naming the key.

Each library layer declares its own parameters (`pixelheal.config` dataclasses); this module only
knows which block of the Kedro parameters goes to which declaration, so a typo, an unknown kind or
a wrong type stops `kedro run` before any data is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

from pixelheal.data import check_source, preprocessing_config
from pixelheal.data.split import split_config
from pixelheal.masks import mask_generator_config
from pixelheal.models import ARCHITECTURES, model_config
from pixelheal.pipelines.export.nodes import export_parameters
from pixelheal.pipelines.inpaint.nodes import inpaint_parameters
from pixelheal.pipelines.train.nodes import training_parameters
from pixelheal.pipelines.tune.nodes import check_tune_block

Check = Callable[[Any, str], object]

SHARED_BLOCKS: dict[str, Check] = {
    "data_processing.source": check_source,
    "data_processing.preprocessing": preprocessing_config,
    "masks.generator": lambda block, where: mask_generator_config(block, where, pairs=True),
    "split": split_config,
    "inpaint": inpaint_parameters,
    "export": export_parameters,
}


def _lookup(params: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted parameter path (KeyError when a part is missing)."""
    value: Any = params
    for part in dotted.split("."):
        value = value[part]
    return value


def _image_channels(params: Mapping[str, Any]) -> int:
    """The channel count the processed images will have: what every model's in_channels becomes."""
    try:
        return preprocessing_config(_lookup(params, "data_processing.preprocessing")).channels
    except (KeyError, ValueError):  # no data_processing in this run, or a block its own check reports
        return 3


def check_model_block(block: Any, where: str, in_channels: int) -> None:
    """An `<arch>.model` block: a known `kind` plus that architecture's declared hyper-parameters."""
    if not isinstance(block, Mapping) or "kind" not in block:
        raise ValueError(f"{where}.kind: required parameter is missing (the architecture key)")
    hparams = {key: value for key, value in block.items() if key != "kind"}
    model_config(block["kind"], {"in_channels": in_channels, **hparams}, where)


def check_training_block(block: Any, where: str) -> None:
    """An `<arch>.training` block, its random-mask generator included."""
    training = training_parameters(block, where)
    if training.random_masks is not None:
        mask_generator_config(training.random_masks, f"{where}.random_masks")


def declared_blocks(params: Mapping[str, Any]) -> dict[str, Check]:
    """Every declared block by its dotted name, with its check."""
    in_channels = _image_channels(params)
    blocks = dict(SHARED_BLOCKS)
    for arch in ARCHITECTURES:
        blocks[f"{arch}.model"] = partial(check_model_block, in_channels=in_channels)
        blocks[f"{arch}.training"] = check_training_block
        blocks[f"tune.{arch}"] = partial(check_tune_block, arch=arch, params=params, checks=blocks)
    return blocks


def _enclosing_block(name: str, blocks: Mapping[str, Check]) -> str | None:
    """The declared block `name` is or lies in (`unet_frm.training.epochs` → `unet_frm.training`)."""
    parts = name.split(".")
    return next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in blocks), None)


def check_parameters(params: Mapping[str, Any], read: Iterable[str]) -> None:
    """Every name in `read` (parameter names without `params:`) exists; the declared blocks among them are valid."""
    blocks = declared_blocks(params)
    for name in sorted(set(read)):
        try:
            value = _lookup(params, name)
        except (KeyError, TypeError):
            raise ValueError(f"{name}: required parameter is missing from the configuration") from None
        block = _enclosing_block(name, blocks)
        if block == name:
            blocks[name](value, name)
        elif block is not None:
            blocks[block](_lookup(params, block), block)


def _leaves(params: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """The dotted path of every value in a nested mapping (an empty mapping is a value)."""
    for key, value in params.items():
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _require_configured(configured: Mapping[str, Any], path: str) -> None:
    """Refuse a `--params` path that names nothing in conf/ (outside any declared block)."""
    parts, value = path.split("."), configured
    if parts[0].startswith("_"):
        raise ValueError(f"{path}: {parts[0]} is a YAML anchor of the parameter files, not a parameter (--params)")
    for depth, part in enumerate(parts):
        if not isinstance(value, Mapping):
            raise ValueError(f"{path}: unknown parameter (--params); {'.'.join(parts[:depth])} is a value, not a block")
        if part not in value:
            known = sorted(str(key) for key in value if not str(key).startswith("_"))
            what = "namespace" if depth == 0 else "parameter"
            raise ValueError(f"{'.'.join(parts[: depth + 1])}: unknown {what} in --params {path}; valid: {known}")
        value = value[part]


def check_runtime_parameters(
    runtime: Mapping[str, Any], configured: Mapping[str, Any], params: Mapping[str, Any]
) -> None:
    """Every `--params` key names a parameter of conf/ (`configured`) or a key its declared block accepts.

    A runtime key inside a declared block (a new optional key of a model, the path of a source
    whose kind is switched) is checked with the whole merged block in `params`, whether or not
    this run reads it; any other runtime key must already exist in conf/base or conf/<env>.
    """
    blocks = declared_blocks(params)
    touched = set()
    for path in _leaves(runtime):
        block = _enclosing_block(path, blocks)
        if block is None:
            _require_configured(configured, path)
        else:
            touched.add(block)
    for block in sorted(touched):
        blocks[block](_lookup(params, block), block)
