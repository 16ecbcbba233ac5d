"""Mask generators behind one interface, and the registry of their declared parameters.

contract: masks are uint8 arrays with 1 = hole (missing), 0 = known.
A generator is called as `generator(height, width, rng, image=None) -> (1, H, W)` and has a
`.name`. A generator block is `{"kind": ..., **parameters}`: `mask_generator_config(block, where)`
checks it without building anything (DeepLabV3 weights are loaded only when built), and
`make_mask_generator(kind, **parameters)` builds the generator. "from_pairs" is not a generator
(it compares the images of a paired source): only `masks.generator` may use it (`pairs=True`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pixelheal.config import coerce, split_kind
from pixelheal.masks.base import GENERATOR_BLOCK, BatchMaskGenerator, MaskGenerator
from pixelheal.masks.box import BoxMaskGenerator
from pixelheal.masks.deeplab import VOC_CLASSES, DeepLabV3Config, DeepLabV3MaskGenerator
from pixelheal.masks.files import binarize_mask, mask_values, read_mask
from pixelheal.masks.irregular import PRESETS, IrregularMaskGenerator
from pixelheal.masks.pairs import FromPairsConfig, masks_from_pairs
from pixelheal.masks.precompute import MaskSet, precompute_masks


@dataclass(frozen=True)
class MaskKind:
    """One generator kind: its declared parameters and how a checked config becomes a generator."""

    config: type
    build: Callable[[Any], MaskGenerator]


def _itself(generator: MaskGenerator) -> MaskGenerator:
    """Irregular and box generators are their own declared parameters: parsing built them."""
    return generator


GENERATORS: dict[str, MaskKind] = {
    "irregular": MaskKind(IrregularMaskGenerator, _itself),
    "box": MaskKind(BoxMaskGenerator, _itself),
    "deeplabv3": MaskKind(DeepLabV3Config, DeepLabV3MaskGenerator),
}
PAIRS_KIND = "from_pairs"
MaskConfig = IrregularMaskGenerator | BoxMaskGenerator | DeepLabV3Config | FromPairsConfig


def mask_generator_config(block: Any, where: str = GENERATOR_BLOCK, *, pairs: bool = False) -> MaskConfig:
    """The checked parameters of a generator block (a FromPairsConfig for "from_pairs" if `pairs`).

    Every error is a ValueError `"<where>.<key>: ..."`; nothing is built or loaded.
    """
    kinds = {kind: entry.config for kind, entry in GENERATORS.items()}
    if pairs:
        kinds[PAIRS_KIND] = FromPairsConfig
    kind, params = split_kind(block, where, sorted(kinds), "mask generator")
    return coerce(kinds[kind], params, where)


def build_mask_generator(config: MaskConfig) -> MaskGenerator:
    """The generator of a config returned by `mask_generator_config`."""
    for entry in GENERATORS.values():
        if isinstance(config, entry.config):
            return entry.build(config)
    raise TypeError(f"not a mask generator config: {config!r}")


def make_mask_generator(kind: str, *, where: str = GENERATOR_BLOCK, **params: Any) -> MaskGenerator:
    """Build the generator registered under `kind`; every error names `<where>.<key>`."""
    return build_mask_generator(mask_generator_config({"kind": kind, **params}, where))


__all__ = [
    "GENERATORS",
    "GENERATOR_BLOCK",
    "PAIRS_KIND",
    "PRESETS",
    "VOC_CLASSES",
    "BatchMaskGenerator",
    "BoxMaskGenerator",
    "DeepLabV3Config",
    "DeepLabV3MaskGenerator",
    "FromPairsConfig",
    "IrregularMaskGenerator",
    "MaskConfig",
    "MaskGenerator",
    "MaskKind",
    "MaskSet",
    "binarize_mask",
    "build_mask_generator",
    "make_mask_generator",
    "mask_generator_config",
    "mask_values",
    "masks_from_pairs",
    "precompute_masks",
    "read_mask",
]
