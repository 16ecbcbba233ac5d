"""Mask generators behind one interface.

Masks are uint8 arrays with 1 = hole (missing), 0 = known.
A generator is called as `generator(height, width, rng, image=None) -> (1, H, W)` and has a
`.name`; `make_mask_generator(kind, **kwargs)` builds one from a parameter block.
"""

from __future__ import annotations

import inspect
from typing import Any

from pixelheal.masks.base import BatchMaskGenerator, MaskGenerator
from pixelheal.masks.box import BoxMaskGenerator, hole_bbox
from pixelheal.masks.deeplab import VOC_CLASSES, DeepLabV3MaskGenerator
from pixelheal.masks.irregular import PRESETS, IrregularMaskGenerator
from pixelheal.masks.pairs import masks_from_pairs
from pixelheal.masks.precompute import MaskSet, precompute_masks

GENERATORS: dict[str, type] = {
    "irregular": IrregularMaskGenerator,
    "box": BoxMaskGenerator,
    "deeplabv3": DeepLabV3MaskGenerator,
}


def make_mask_generator(kind: str, **kwargs: Any) -> MaskGenerator:
    """Build the generator registered under `kind` with its keyword parameters."""
    if not isinstance(kind, str) or kind not in GENERATORS:
        raise ValueError(f"masks.kind: unknown mask generator {kind!r}; valid kinds: {sorted(GENERATORS)}")
    valid = inspect.signature(GENERATORS[kind]).parameters
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"masks.{kind}.{unknown[0]}: unknown parameter; valid: {sorted(valid)}")
    return GENERATORS[kind](**kwargs)


__all__ = [
    "GENERATORS",
    "PRESETS",
    "VOC_CLASSES",
    "BatchMaskGenerator",
    "BoxMaskGenerator",
    "DeepLabV3MaskGenerator",
    "IrregularMaskGenerator",
    "MaskGenerator",
    "MaskSet",
    "hole_bbox",
    "make_mask_generator",
    "masks_from_pairs",
    "precompute_masks",
]
