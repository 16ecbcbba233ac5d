"""Tests for the box mask generator and the hole+context crop box."""

import numpy as np
import pytest

from pixelheal.masks import BoxMaskGenerator, hole_bbox

GAN = {"hole_size": (0.16, 0.16), "margin": 0.08, "context_ring": 0.02}  # 32-px hole, 16 margin, 4 ring at 200


def test_contract_and_single_rectangle_of_ones():
    mask = BoxMaskGenerator(hole_size=(0.25, 0.25))(32, 32, np.random.default_rng(0))
    assert mask.dtype == np.uint8 and mask.shape == (1, 32, 32)
    assert set(np.unique(mask)) == {0, 1}
    top, left, bottom, right = hole_bbox(mask)
    assert (bottom - top, right - left) == (8, 8)
    assert mask[0, top:bottom, left:right].all(), "the box interior is the hole (1)"
    assert mask.sum() == 64, "nothing outside the box is a hole"


def test_gan_setting_places_hole_inside_margin_and_ring():
    gen = BoxMaskGenerator(**GAN)
    starts = []
    for seed in range(200):
        top, left, bottom, right = hole_bbox(gen(200, 200, np.random.default_rng(seed)))
        assert (bottom - top, right - left) == (32, 32)
        # hole + 4-px ring stays at least 16 px from every border
        assert top >= 20 and left >= 20 and bottom <= 180 and right <= 180
        starts.append(top)
    assert min(starts) <= 30 and max(starts) >= 138, "positions spread over the allowed range"


def test_rect_aspect_draws_independent_sides_in_range():
    gen = BoxMaskGenerator(hole_size=(0.1, 0.5), aspect="rect")
    shapes = set()
    for seed in range(50):
        top, left, bottom, right = hole_bbox(gen(100, 60, np.random.default_rng(seed)))
        assert 10 <= bottom - top <= 50 and 6 <= right - left <= 30
        shapes.add((bottom - top) * 60 == (right - left) * 100)
    assert False in shapes, "height and width vary independently"


def test_square_aspect_uses_shorter_side():
    top, left, bottom, right = hole_bbox(BoxMaskGenerator(hole_size=0.5)(40, 80, np.random.default_rng(1)))
    assert bottom - top == right - left == 20


def test_deterministic_per_seed():
    gen = BoxMaskGenerator(hole_size=(0.1, 0.3))
    np.testing.assert_array_equal(gen(64, 64, np.random.default_rng(3)), gen(64, 64, np.random.default_rng(3)))
    assert not np.array_equal(gen(64, 64, np.random.default_rng(3)), gen(64, 64, np.random.default_rng(4)))


def test_hole_bbox_ring_is_clipped_and_accepts_2d():
    mask = np.zeros((10, 12), np.uint8)
    mask[1:4, 5:9] = 1
    assert hole_bbox(mask) == (1, 5, 4, 9)
    assert hole_bbox(mask[None], ring=2) == (0, 3, 6, 11)
    assert hole_bbox(mask, ring=5) == (0, 0, 9, 12)


@pytest.mark.parametrize(
    ("mask", "ring"),
    [(np.zeros((1, 8, 8), np.uint8), 0), (np.ones((2, 8, 8), np.uint8), 0), (np.ones((8, 8), np.uint8), -1)],
    ids=["empty", "bad_shape", "negative_ring"],
)
def test_hole_bbox_rejects_bad_input(mask, ring):
    with pytest.raises(ValueError, match="hole_bbox"):
        hole_bbox(mask, ring=ring)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"hole_size": 0.0}, "hole_size"),
        ({"hole_size": (0.3, 0.2)}, "hole_size"),
        ({"hole_size": (0.1, 1.2)}, "hole_size"),
        ({"hole_size": (0.1, 0.2, 0.3)}, "hole_size"),
        ({"hole_size": None}, "hole_size"),
        ({"hole_size": 0.5, "margin": 0.2, "context_ring": 0.1}, "hole_size"),
        ({"aspect": "circle"}, "aspect"),
        ({"margin": -0.1}, "margin"),
        ({"context_ring": 0.6}, "context_ring"),
    ],
)
def test_invalid_parameters_name_the_parameter(kwargs, param):
    with pytest.raises(ValueError, match=f"masks.box.{param}"):
        BoxMaskGenerator(**kwargs)
