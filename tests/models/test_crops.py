"""Hole+context crops: the hole's box, squared inside the image, cut out, resized and pasted back."""

import numpy as np
import pytest
import torch

from pixelheal.models.crops import hole_bbox, hole_crops, paste, square_box


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
    "box, expected",
    [
        ((10, 10, 14, 14), (10, 10, 14, 14)),  # already square
        ((10, 10, 12, 16), (8, 10, 14, 16)),  # grown around the box
        ((0, 0, 2, 8), (0, 0, 8, 8)),  # shifted inside at the border
        ((0, 0, 4, 30), (0, 0, 20, 30)),  # as square as the 20-px height allows
    ],
)
def test_square_box(box, expected):
    assert square_box(box, 20, 30) == expected


def test_crops_cover_each_hole_with_its_ring_and_skip_images_without_one():
    images, masks = torch.rand(3, 3, 40, 40), torch.zeros(3, 1, 40, 40)
    masks[0, :, 10:14, 20:28] = 1
    masks[2, :, 0:3, 0:3] = 1
    crops = hole_crops(images, masks, context_ring=0.05, size=16)  # a 2-px ring at 40 px
    assert crops.rows == [0, 2]
    assert crops.boxes == [(6, 18, 18, 30), (0, 0, 5, 5)]
    assert crops.images.shape == (2, 3, 16, 16) and crops.masks.shape == (2, 1, 16, 16)
    assert set(crops.masks.unique().tolist()) == {0.0, 1.0}
    assert hole_crops(images, torch.zeros_like(masks), 0.05, 16) is None


def test_paste_writes_only_inside_the_boxes():
    images, masks = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    masks[1, :, 8:16, 8:16] = 1
    crops = hole_crops(images, masks, context_ring=0.0, size=16)
    out = paste(images, crops, torch.zeros(1, 3, 16, 16))
    assert torch.equal(out[0], images[0])
    assert torch.equal(out[1, :, 8:16, 8:16], torch.zeros(3, 8, 8))
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[8:16, 8:16] = False
    assert torch.equal(out[1][:, outside], images[1][:, outside])
