"""Tests for the box mask generator."""

import numpy as np
import pytest

from pixelheal.masks import BoxMaskGenerator, make_mask_generator

GAN = {"hole_size": (0.16, 0.16), "margin": 0.08, "context_ring": 0.02}  # 32-px hole, 16 margin, 4 ring at 200


def hole_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the (1, H, W) mask's hole; end exclusive."""
    rows, cols = np.nonzero(mask[0])
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


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


def test_margin_from_hole_puts_the_ring_inside_the_margin():
    gen = BoxMaskGenerator(**GAN, margin_from="hole")  # the GAN original: the hole 16 px from the border
    starts = []
    for seed in range(300):
        top, left, bottom, right = hole_bbox(gen(200, 200, np.random.default_rng(seed)))
        assert (bottom - top, right - left) == (32, 32)
        assert min(top, left) >= 16 and max(bottom, right) <= 184
        starts += [top, left]
    assert min(starts) == 16 and max(starts) == 152, "the hole reaches the margin on both sides"


# Boxes drawn (seeds 0-4, 200x160 images) before margin_from existed: the default must keep them.
BOXES_BEFORE = {
    "gan": [(89, 43, 115, 69), (121, 113, 147, 139), (34, 46, 60, 72), (44, 40, 70, 66), (138, 68, 164, 94)],
    "rect": [(57, 22, 98, 47), (26, 30, 63, 69), (74, 99, 105, 124), (45, 98, 71, 122), (123, 110, 172, 140)],
}


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("gan", GAN), ("rect", {"hole_size": (0.12, 0.25), "aspect": "rect", "margin": 0.05, "context_ring": 0.06})],
)
def test_margin_from_ring_is_the_default_and_draws_the_same_boxes(name, kwargs):
    gen = BoxMaskGenerator(**kwargs)
    assert gen.margin_from == "ring"
    assert [hole_bbox(gen(200, 160, np.random.default_rng(seed))) for seed in range(5)] == BOXES_BEFORE[name]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": 0.02, "context_ring": 0.04, "margin_from": "hole"}, r"context_ring: 0.04 is wider than the margin"),
        (
            {"hole_size": 0.5, "margin": 0.3, "context_ring": 0.1, "margin_from": "hole"},
            r"hole_size: largest hole 0.5 \+ 2\*margin 0.3 exceeds",
        ),
        ({"margin_from": "inside"}, r"margin_from: expected one of \['ring', 'hole'\]"),
    ],
)
def test_margin_from_is_checked(kwargs, message):
    with pytest.raises(ValueError, match=rf"^masks\.generator\.{message}"):
        make_mask_generator("box", **kwargs)


def test_margin_from_hole_fits_what_margin_from_ring_refuses():
    fits = {"hole_size": 0.6, "margin": 0.2, "context_ring": 0.1}  # 0.6 + 0.4 = 1: the ring is inside
    make_mask_generator("box", **fits, margin_from="hole")
    with pytest.raises(ValueError, match=r"^masks\.generator\.hole_size: .*2\*context_ring 0.1 exceeds"):
        make_mask_generator("box", **fits)


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


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"hole_size": 0.0}, "hole_size"),
        ({"hole_size": (0.3, 0.2)}, "hole_size"),
        ({"hole_size": (0.1, 1.2)}, "hole_size"),
        ({"hole_size": (0.1, 0.2, 0.3)}, "hole_size"),
        ({"hole_size": None}, "hole_size"),
        ({"hole_size": "big"}, "hole_size"),
        ({"margin": "0.1"}, "margin"),
        ({"hole_size": 0.5, "margin": 0.2, "context_ring": 0.1}, "hole_size"),
        ({"aspect": "circle"}, "aspect"),
        ({"margin": -0.1}, "margin"),
        ({"context_ring": 0.6}, "context_ring"),
    ],
)
def test_invalid_parameters_name_the_parameter(kwargs, param):
    with pytest.raises(ValueError, match=rf"^masks\.generator\.{param}: "):
        make_mask_generator("box", **kwargs)


def test_direct_construction_checks_ranges():
    with pytest.raises(ValueError, match=r"^margin: must lie in \[0.0, 0.5\]"):
        BoxMaskGenerator(margin=0.7)


def test_hole_size_accepts_a_fraction_or_a_pair():
    assert BoxMaskGenerator(hole_size=0.3).hole_range == (0.3, 0.3)
    assert make_mask_generator("box", hole_size=[0.1, 0.2]).hole_range == (0.1, 0.2)
