"""Tests for the irregular brush-stroke mask generator."""

import cv2
import numpy as np
import pytest

from pixelheal.masks import PRESETS, IrregularMaskGenerator, make_mask_generator
from pixelheal.masks.irregular import fit_count

SIZES = (28, 32, 64, 200)


def _fraction(mask: np.ndarray) -> float:
    return float(mask.mean())


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("size", [(28, 28), (32, 48), (64, 64)])
def test_contract_dtype_shape_values(preset, size):
    gen = IrregularMaskGenerator(preset=preset)
    mask = gen(*size, np.random.default_rng(0))
    assert mask.dtype == np.uint8
    assert mask.shape == (1, *size)
    assert set(np.unique(mask)) <= {0, 1}
    assert mask.any(), "strokes always leave some hole"


@pytest.mark.parametrize(
    "limits",
    [(0.0, 0.5), (0.1, 0.3), (0.3, 0.32), (0.6, 0.9), (0.01, 0.03)],
    ids=["default", "mid", "tight", "large_forces_growth", "small_forces_shrink"],
)
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_area_limits_hold_over_seeds_and_sizes(preset, limits):
    low, high = limits
    gen = IrregularMaskGenerator(preset, min_hole_fraction=low, max_hole_fraction=high, max_tries=3)
    for size in SIZES:
        for seed in range(8 if size == 200 else 20):
            fraction = _fraction(gen(size, size, np.random.default_rng([seed, size])))
            assert low - 1e-9 <= fraction <= high + 1e-9, (preset, size, seed, fraction)
            if low > 0:
                assert fraction > 0


def test_area_limits_with_boxes_on_non_square_images():
    gen = IrregularMaskGenerator("thick", min_hole_fraction=0.2, max_hole_fraction=0.4, max_boxes=3)
    for seed in range(30):
        fraction = _fraction(gen(28, 64, np.random.default_rng(seed)))
        assert 0.2 - 1e-9 <= fraction <= 0.4 + 1e-9


def test_boxes_add_rectangles():
    with_boxes = IrregularMaskGenerator("thin", max_hole_fraction=1.0, max_boxes=5)
    without = IrregularMaskGenerator("thin", max_hole_fraction=1.0)
    seeds = range(20)
    boxed = np.mean([with_boxes(64, 64, np.random.default_rng(s)).mean() for s in seeds])
    plain = np.mean([without(64, 64, np.random.default_rng(s)).mean() for s in seeds])
    assert boxed > plain


def test_deterministic_per_seed():
    gen = IrregularMaskGenerator("medium", min_hole_fraction=0.1)
    first = gen(64, 64, np.random.default_rng(7))
    again = gen(64, 64, np.random.default_rng(7))
    other = gen(64, 64, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def _stroke_halfwidth(mask: np.ndarray) -> float:
    """Largest distance from a hole pixel to the nearest known pixel (≈ half the stroke width)."""
    padded = np.pad(mask[0], 1)  # the border counts as known
    return float(cv2.distanceTransform(padded, cv2.DIST_L2, 5).max())


def test_presets_scale_with_image_size():
    gen = IrregularMaskGenerator("thick", max_hole_fraction=1.0)
    small = [gen(32, 32, np.random.default_rng(s)) for s in range(40)]
    large = [gen(200, 200, np.random.default_rng(s)) for s in range(40)]
    assert np.mean([_stroke_halfwidth(m) for m in large]) > 3 * np.mean([_stroke_halfwidth(m) for m in small])
    # same preset, same share of the image
    assert abs(np.mean([m.mean() for m in small]) - np.mean([m.mean() for m in large])) < 0.1


def test_thick_strokes_wider_than_thin():
    thin = IrregularMaskGenerator("thin", max_hole_fraction=1.0)
    thick = IrregularMaskGenerator("thick", max_hole_fraction=1.0)
    seeds = range(20)
    thin_w = np.mean([_stroke_halfwidth(thin(128, 128, np.random.default_rng(s))) for s in seeds])
    thick_w = np.mean([_stroke_halfwidth(thick(128, 128, np.random.default_rng(s))) for s in seeds])
    assert thick_w > 2 * thin_w


def test_fit_count_adds_and_removes_exactly():
    mask = np.zeros((10, 10), np.uint8)
    mask[2:6, 2:6] = 1  # 16 holes
    smaller = fit_count(mask, 9)
    larger = fit_count(mask, 30)
    assert smaller.sum() == 9 and larger.sum() == 30
    assert np.all(smaller <= mask), "shrinking only removes hole pixels"
    assert np.all(larger >= mask), "growing only adds hole pixels"
    np.testing.assert_array_equal(fit_count(mask, 9), smaller)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"preset": "huge"}, "preset"),
        ({"min_hole_fraction": 0.6, "max_hole_fraction": 0.5}, "min_hole_fraction"),
        ({"max_hole_fraction": 0.0}, "max_hole_fraction"),
        ({"max_hole_fraction": 1.5}, "max_hole_fraction"),
        ({"min_hole_fraction": -0.1}, "min_hole_fraction"),
        ({"max_boxes": -1}, "max_boxes"),
        ({"max_tries": 0}, "max_tries"),
        ({"max_boxes": 1.5}, "max_boxes"),
        ({"preset": 3}, "preset"),
        ({"max_hole_fraction": True}, "max_hole_fraction"),
    ],
)
def test_invalid_parameters_name_the_parameter(kwargs, param):
    with pytest.raises(ValueError, match=rf"^masks\.generator\.{param}: "):
        make_mask_generator("irregular", **kwargs)


def test_the_factory_builds_the_same_generator():
    built = make_mask_generator("irregular", preset="thin", max_boxes=2)
    assert built == IrregularMaskGenerator("thin", max_boxes=2)
    np.testing.assert_array_equal(
        built(32, 32, np.random.default_rng(5)),
        IrregularMaskGenerator("thin", max_boxes=2)(32, 32, np.random.default_rng(5)),
    )


def test_impossible_limits_at_size_raise():
    gen = IrregularMaskGenerator(min_hole_fraction=0.3, max_hole_fraction=0.3)
    with pytest.raises(ValueError, match="min_hole_fraction"):
        gen(3, 3, np.random.default_rng(0))  # 2.7 holes: no whole count fits


def test_invalid_size_raises():
    with pytest.raises(ValueError, match="height"):
        IrregularMaskGenerator()(0, 32, np.random.default_rng(0))
