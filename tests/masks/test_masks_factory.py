"""Tests for make_mask_generator, the one factory behind the parameter files."""

import numpy as np
import pytest

from pixelheal.masks import (
    BoxMaskGenerator,
    DeepLabV3MaskGenerator,
    IrregularMaskGenerator,
    MaskGenerator,
    make_mask_generator,
)


@pytest.mark.parametrize(
    ("kind", "kwargs", "cls"),
    [
        ("irregular", {"preset": "thick", "max_boxes": 2}, IrregularMaskGenerator),
        ("box", {"hole_size": [0.1, 0.2], "aspect": "rect"}, BoxMaskGenerator),
        ("deeplabv3", {"weights": "none", "input_size": 32}, DeepLabV3MaskGenerator),
    ],
)
def test_builds_each_kind(kind, kwargs, cls):
    gen = make_mask_generator(kind, **kwargs)
    assert isinstance(gen, cls) and isinstance(gen, MaskGenerator)
    assert gen.name == kind
    image = np.zeros((3, 32, 32), np.uint8)
    mask = gen(32, 32, np.random.default_rng(0), image=image)
    assert mask.dtype == np.uint8 and mask.shape == (1, 32, 32)


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(ValueError, match=r"'circle'.*\['box', 'deeplabv3', 'irregular'\]"):
        make_mask_generator("circle")


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match="masks.box.hole_sizes"):
        make_mask_generator("box", hole_sizes=0.2)


def test_invalid_value_is_named():
    with pytest.raises(ValueError, match="masks.irregular.max_hole_fraction"):
        make_mask_generator("irregular", max_hole_fraction=2)
