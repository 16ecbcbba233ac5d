"""Tests for the generator registry: declared parameters checked once, built by one factory."""

import numpy as np
import pytest

from pixelheal.masks import (
    GENERATORS,
    BoxMaskGenerator,
    DeepLabV3Config,
    DeepLabV3MaskGenerator,
    FromPairsConfig,
    IrregularMaskGenerator,
    MaskGenerator,
    build_mask_generator,
    deeplab,
    make_mask_generator,
    mask_generator_config,
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


def test_every_kind_builds_from_its_defaults(monkeypatch):
    monkeypatch.setattr(deeplab, "load_deeplabv3", lambda backbone, weights: None)
    for kind in GENERATORS:
        assert make_mask_generator(kind).name == kind


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(
        ValueError,
        match=r"^masks\.generator\.kind: unknown mask generator 'circle'; "
        r"valid: \['box', 'deeplabv3', 'irregular'\]$",
    ):
        make_mask_generator("circle")


def test_missing_kind_and_non_mapping_blocks_are_refused():
    with pytest.raises(ValueError, match=r"^masks\.generator\.kind: required parameter is missing"):
        mask_generator_config({"preset": "thin"})
    with pytest.raises(ValueError, match=r"^masks\.generator: expected a mapping"):
        mask_generator_config(["irregular"])


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(
        ValueError,
        match=r"^masks\.generator\.hole_sizes: unknown parameter; "
        r"valid: \['hole_size', 'aspect', 'margin', 'context_ring', 'margin_from'\]$",
    ):
        make_mask_generator("box", hole_sizes=0.2)


def test_wrong_type_names_the_key():
    with pytest.raises(ValueError, match=r"^masks\.generator\.max_boxes: expected an integer, got '2'$"):
        make_mask_generator("irregular", max_boxes="2")


def test_invalid_value_is_named_where_the_block_was_read():
    with pytest.raises(ValueError, match=r"^gan\.training\.random_masks\.max_hole_fraction: must lie in"):
        make_mask_generator("irregular", where="gan.training.random_masks", max_hole_fraction=2)


def test_config_is_checked_without_loading_weights(monkeypatch):
    def refuse(backbone, weights):
        raise AssertionError("checking a block must not load the network")

    monkeypatch.setattr(deeplab, "load_deeplabv3", refuse)
    config = mask_generator_config({"kind": "deeplabv3", "weights": "default", "classes": ["person", 8]})
    assert isinstance(config, DeepLabV3Config) and config.classes == ("person", 8)


def test_config_then_build_equals_make():
    block = {"kind": "irregular", "preset": "thin", "min_hole_fraction": 0.1}
    built = build_mask_generator(mask_generator_config(block))
    assert built == make_mask_generator(**block)


def test_from_pairs_only_where_allowed():
    assert mask_generator_config({"kind": "from_pairs", "threshold": 3}, pairs=True) == FromPairsConfig(3)
    assert mask_generator_config({"kind": "from_pairs"}, pairs=True) == FromPairsConfig(10)
    with pytest.raises(ValueError, match=r"^x\.kind: unknown mask generator 'from_pairs'"):
        mask_generator_config({"kind": "from_pairs"}, "x")
    with pytest.raises(ValueError, match=r"^masks\.generator\.threshold: must lie in \[0, 254\]"):
        mask_generator_config({"kind": "from_pairs", "threshold": 255}, pairs=True)


@pytest.mark.parametrize(
    ("fallback", "key"),
    [
        ({"kind": "irregular", "preset": "huge"}, "fallback.preset"),
        ({"preset": "thin"}, "fallback.kind"),
        ({"kind": "from_pairs"}, "fallback.kind"),
        ({"kind": "box", "hole_size": 0.5, "margin": 0.3}, "fallback.hole_size"),
        ("irregular", "fallback"),
    ],
)
def test_deeplab_fallback_is_checked_like_any_block(fallback, key):
    key = key.replace(".", r"\.")
    with pytest.raises(ValueError, match=rf"^masks\.generator\.{key}: "):
        mask_generator_config({"kind": "deeplabv3", "fallback": fallback})
