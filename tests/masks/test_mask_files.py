"""Mask files drawn by people: 255 = hole, soft edges thresholded with a warning, useless masks refused."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from pixelheal.masks.files import binarize_mask, mask_values, read_mask


def test_binarize_maps_255_to_hole_and_thresholds_soft_edges_with_a_warning(caplog):
    assert np.array_equal(binarize_mask(np.array([[0, 255], [255, 0]]), "m.png"), [[0, 1], [1, 0]])
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        mask = binarize_mask(np.array([[0, 127], [128, 255]]), "m.png")
    assert np.array_equal(mask, [[0, 0], [1, 1]])
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


@pytest.mark.parametrize(
    "values, problem",
    [
        ([[0, 1], [1, 0]], "no value >= 128"),  # a 0/1 mask saved as PNG: ambiguous, refused
        ([[0, 0], [0, 0]], "empty"),
        ([[255, 255], [255, 255]], "whole image"),
    ],
)
def test_ambiguous_or_useless_masks_are_refused(tmp_path, values, problem):
    path = tmp_path / "m.png"
    Image.fromarray(np.array(values, np.uint8)).save(path)
    with pytest.raises(ValueError, match=problem) as error:
        read_mask(path)
    assert str(path) in str(error.value)


def test_transparent_pixels_are_known_and_16_bit_masks_of_either_scale_are_read():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = 255  # one opaque white stroke pixel; the rest is transparent
    rgba[1, 1] = (255, 255, 255, 0)  # white but fully transparent: known
    assert mask_values(Image.fromarray(rgba, "RGBA")).tolist() == [[255, 0], [0, 0]]
    for full in (255, 65535):
        values = np.array([[0, full], [full, 0]], np.uint16)
        assert mask_values(Image.fromarray(values)).tolist() == [[0, 255], [255, 0]]


def test_an_unreadable_mask_file_is_named(tmp_path):
    (tmp_path / "m.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"m\.png"):
        read_mask(tmp_path / "m.png")
