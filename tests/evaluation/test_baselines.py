"""Tests for the classical inpainting baselines."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelheal.evaluation.baselines import BASELINES, inpaint_baseline
from pixelheal.evaluation.metrics import per_image_metrics

CIFAR = Path(__file__).resolve().parents[2] / "../shared/datasets/cifar10_sample/test"


def _gradient(n: int = 2, c: int = 3, size: int = 32) -> np.ndarray:
    """Smooth linear ramps: a biharmonic function, so biharmonic fill is near exact."""
    y, x = np.mgrid[0:size, 0:size]
    chans = [4 * x + 2 * y + 20 * k for k in range(c)]
    return np.broadcast_to(np.stack(chans), (n, c, size, size)).astype(np.uint8).copy()


def _box_masks(n: int = 2, size: int = 32) -> np.ndarray:
    m = np.zeros((n, 1, size, size), np.uint8)
    m[:, :, 12:20, 10:18] = 1
    return m


@pytest.mark.parametrize("kind", sorted(BASELINES))
@pytest.mark.parametrize("channels", [1, 3])
def test_known_pixels_unchanged_and_holes_plausible(kind, channels):
    images, masks = _gradient(c=channels), _box_masks()
    out = inpaint_baseline(kind, images, masks)
    assert out.shape == images.shape and out.dtype == np.uint8
    known = np.broadcast_to(masks == 0, images.shape)
    assert np.array_equal(out[known], images[known])
    err = np.abs(out.astype(int) - images.astype(int))[~known]
    assert err.mean() < 6  # the ramp changes by up to 4 per pixel


def test_biharmonic_reconstructs_gradient_almost_exactly():
    images, masks = _gradient(), _box_masks()
    out = inpaint_baseline("biharmonic", images, masks)
    assert np.abs(out.astype(int) - images.astype(int)).max() <= 1


def test_empty_mask_returns_image_and_workers_agree():
    images, masks = _gradient(4), _box_masks(4)
    masks[0] = 0
    serial = inpaint_baseline("telea", images, masks)
    assert np.array_equal(serial[0], images[0])
    assert np.array_equal(inpaint_baseline("telea", images, masks, workers=2), serial)


@pytest.mark.parametrize(
    "kind, masks, match",
    [
        ("navier", _box_masks(), "valid kinds: \\['biharmonic', 'telea'\\]"),
        ("telea", _box_masks(2, 16), "masks must have shape"),
        ("telea", np.ones((2, 1, 32, 32), np.uint8), "whole image"),
    ],
)
def test_bad_inputs_raise(kind, masks, match):
    with pytest.raises(ValueError, match=match):
        inpaint_baseline(kind, _gradient(), masks)


def test_float_images_rejected():
    with pytest.raises(ValueError, match="uint8"):
        inpaint_baseline("telea", _gradient().astype(np.float32), _box_masks())


def test_baselines_beat_grey_fill_on_real_photos():
    files = sorted(CIFAR.glob("*/000[0-1].jpg"))
    if not files:
        pytest.skip(f"CIFAR-10 sample not found under {CIFAR.resolve()}")
    images = np.stack([np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1) for f in files])
    masks = _box_masks(len(images))
    grey = np.where(masks > 0, 128, images).astype(np.uint8)

    def hole_psnr(out: np.ndarray) -> float:
        return float(per_image_metrics(images / 255.0, out / 255.0, masks)["psnr_hole"].mean())

    for kind in BASELINES:
        assert hole_psnr(inpaint_baseline(kind, images, masks)) > hole_psnr(grey) + 3
