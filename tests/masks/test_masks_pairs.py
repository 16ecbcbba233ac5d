"""Tests for masks recovered from original/occluded pairs."""

import numpy as np
import pytest

from pixelheal.masks import masks_from_pairs


def _pair(channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    originals = np.random.default_rng(0).integers(0, 200, (2, channels, 8, 8), dtype=np.uint8)
    return originals, originals.copy()


def test_hole_where_images_differ():
    originals, occluded = _pair()
    occluded[0, :, 2:5, 3:6] = 255  # an occluding patch, all channels
    occluded[1, 1, 7, 0] += 50  # one channel of one pixel
    masks = masks_from_pairs(originals, occluded)
    assert masks.dtype == np.uint8 and masks.shape == (2, 1, 8, 8)
    expected = np.zeros((2, 1, 8, 8), np.uint8)
    expected[0, 0, 2:5, 3:6] = 1  # originals are < 200, so every patch pixel differs
    expected[1, 0, 7, 0] = 1
    np.testing.assert_array_equal(masks, expected)


def test_threshold_is_strict():
    originals, occluded = _pair(channels=1)
    occluded[0, 0, 0, 0] = originals[0, 0, 0, 0] + 10
    occluded[0, 0, 0, 1] = originals[0, 0, 0, 1] + 11
    masks = masks_from_pairs(originals, occluded, threshold=10)
    assert masks[0, 0, 0, 0] == 0 and masks[0, 0, 0, 1] == 1
    assert masks.sum() == 1


def test_no_uint8_wraparound():
    originals = np.full((1, 3, 2, 2), 5, np.uint8)
    occluded = np.full((1, 3, 2, 2), 250, np.uint8)
    assert masks_from_pairs(originals, occluded).all()
    assert masks_from_pairs(occluded, originals).all()


@pytest.mark.parametrize(
    ("originals", "occluded", "match"),
    [
        (np.zeros((2, 3, 8, 8), np.uint8), np.zeros((2, 3, 8, 9), np.uint8), "differ in shape"),
        (np.zeros((3, 8, 8), np.uint8), np.zeros((3, 8, 8), np.uint8), "originals must be"),
        (np.zeros((1, 3, 8, 8), np.uint8), np.zeros((1, 3, 8, 8), np.float32), "occluded must be uint8"),
    ],
)
def test_mismatched_inputs_raise(originals, occluded, match):
    with pytest.raises(ValueError, match=match):
        masks_from_pairs(originals, occluded)


def test_invalid_threshold_raises():
    originals, occluded = _pair()
    with pytest.raises(ValueError, match="threshold"):
        masks_from_pairs(originals, occluded, threshold=300)
