"""Tests for sample grids and loss curves."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pixelheal.evaluation.grids import HEADER_PX, HOLE_GREY, PAD_PX, loss_curve, sample_grid


def _data(n: int = 5, c: int = 3, size: int = 32):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, c, size, size), dtype=np.uint8)
    masks = np.zeros((n, 1, size, size), np.uint8)
    masks[:, :, 4:12, 4:12] = 1
    return images, masks


def _expected_size(rows: int, cols: int, cell: int) -> tuple[int, int]:
    return cols * cell + (cols + 1) * PAD_PX, HEADER_PX + rows * cell + (rows + 1) * PAD_PX


def test_grid_size_one_output():
    images, masks = _data()
    grid = sample_grid(images, masks, images, n=3)
    assert grid.mode == "RGB"
    assert grid.size == _expected_size(rows=3, cols=4, cell=96)  # 32 px upscaled x3


def test_grid_size_several_samples_and_fewer_images_than_n():
    images, masks = _data(2, c=1, size=28)
    grid = sample_grid(images, masks, [images, images, images], n=8)
    assert grid.size == _expected_size(rows=2, cols=6, cell=28 * 4)


def test_grid_cells_show_mask_and_masked_input():
    images, masks = _data(1)
    grid = np.asarray(sample_grid(images, masks, images, n=1))
    cell, y0 = 96, HEADER_PX + PAD_PX
    mask_x0, masked_x0 = PAD_PX + (cell + PAD_PX), PAD_PX + 2 * (cell + PAD_PX)
    # pixel (6, 6) of the 32 px image is in the hole; (20, 20) is known
    assert np.all(grid[y0 + 6 * 3, mask_x0 + 6 * 3] == 255)
    assert np.all(grid[y0 + 20 * 3, mask_x0 + 20 * 3] == 0)
    assert np.all(grid[y0 + 6 * 3, masked_x0 + 6 * 3] == HOLE_GREY)
    assert np.array_equal(grid[y0 + 20 * 3, masked_x0 + 20 * 3], images[0, :, 20, 20])


def test_grid_rejects_mismatched_outputs():
    images, masks = _data()
    with pytest.raises(ValueError, match="outputs\\[1\\]"):
        sample_grid(images, masks, [images, images[:, :, :16]])


def test_loss_curve_returns_image():
    history = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6]})
    image = loss_curve(history)
    assert isinstance(image, Image.Image) and image.mode == "RGB"
    assert image.width > 200 and image.height > 150
    assert len(np.unique(np.asarray(image).reshape(-1, 3), axis=0)) > 3  # something was drawn


def test_loss_curve_needs_epoch():
    with pytest.raises(ValueError, match="epoch"):
        loss_curve(pd.DataFrame({"train_loss": [1.0]}))
