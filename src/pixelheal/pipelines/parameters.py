"""Every parameter block a run reads, checked before its first node: one line naming the key.

Each library layer declares its own parameters (`pixelheal.config` dataclasses); this module only
knows which block of the Kedro parameters goes to which declaration, so a typo, an unknown kind or
a wrong type stops `kedro run` before any data is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pixelheal.data import check_source, preprocessing_config
from pixelheal.masks import mask_generator_config
from pixelheal.models import ARCHITECTURES, model_config
from pixelheal.pipelines.train.nodes import training_parameters

Check = Callable[[Any, str], object]

SHARED_BLOCKS: dict[str, Check] = {
    "data_processing.source": check_source,
    "data_processing.preprocessing": preprocessing_config,
    "masks.generator": lambda block, where: mask_generator_config(block, where, pairs=True),
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


def check_parameters(params: Mapping[str, Any], read: Iterable[str]) -> None:
    """Check every block in `read` (parameter names without `params:`) that has a declaration."""
    in_channels = _image_channels(params)
    for name in sorted(set(read)):
        namespace, _, block_name = name.rpartition(".")
        if name in SHARED_BLOCKS:
            SHARED_BLOCKS[name](_lookup(params, name), name)
        elif namespace in ARCHITECTURES and block_name == "model":
            check_model_block(_lookup(params, name), name, in_channels)
        elif namespace in ARCHITECTURES and block_name == "training":
            check_training_block(_lookup(params, name), name)
