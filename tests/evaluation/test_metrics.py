"""Tests for per-image metrics and area buckets."""

import math

import numpy as np
import pytest
import torch

from pixelheal.evaluation.metrics import (
    AREA_BUCKETS,
    PSNR_CAP_DB,
    area_bucket,
    hole_fractions,
    per_image_metrics,
)


def _images(n: int = 2, c: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=g, dtype=torch.float64)


def _box_mask(n: int = 2, size: int = 32, lo: int = 8, hi: int = 16) -> torch.Tensor:
    m = torch.zeros(n, 1, size, size)
    m[:, :, lo:hi, lo:hi] = 1
    return m


def test_identical_images_hit_caps_and_zero_errors():
    x, m = _images(), _box_mask()
    r = per_image_metrics(x, x.clone(), m)
    assert set(r) == {"psnr", "ssim", "l1_hole", "psnr_hole", "edge_error"}
    assert all(v.shape == (2,) for v in r.values())
    assert torch.allclose(r["psnr"], torch.full((2,), PSNR_CAP_DB, dtype=torch.float64))
    assert torch.allclose(r["psnr_hole"], torch.full((2,), PSNR_CAP_DB, dtype=torch.float64))
    assert torch.allclose(r["ssim"], torch.ones(2, dtype=torch.float64), atol=1e-6)
    assert torch.all(r["l1_hole"] == 0)
    assert torch.all(r["edge_error"] == 0)


def test_psnr_matches_formula_for_known_noise():
    x = torch.full((1, 3, 16, 16), 0.5, dtype=torch.float64)
    out = x + 0.1  # MSE 0.01 -> 20 dB
    r = per_image_metrics(x, out, torch.ones(1, 1, 16, 16))
    assert r["psnr"].item() == pytest.approx(20.0, abs=1e-9)
    assert r["psnr_hole"].item() == pytest.approx(20.0, abs=1e-9)


def test_psnr_hole_depends_only_on_hole_pixels():
    x, m = _images(1), _box_mask(1)
    noise = 0.2 * torch.ones_like(x)
    hole_changed = x + noise * m  # only hole pixels differ
    known_changed = x + noise * (1 - m)  # only known pixels differ
    r_hole = per_image_metrics(x, hole_changed, m)
    r_known = per_image_metrics(x, known_changed, m)
    assert r_hole["psnr_hole"].item() == pytest.approx(10 * math.log10(1 / 0.04))
    assert r_known["psnr_hole"].item() == PSNR_CAP_DB
    assert r_known["l1_hole"].item() == 0
    assert r_known["psnr"].item() < PSNR_CAP_DB  # whole-image PSNR does see known pixels


def test_l1_hole_hand_made():
    x = torch.zeros(1, 3, 16, 16, dtype=torch.float64)
    m = torch.zeros(1, 1, 16, 16)
    m[0, 0, 0, :2] = 1  # 2 hole pixels x 3 channels = 6 values
    out = x.clone()
    out[0, 0, 0, 0] = 0.6  # one channel of one hole pixel off by 0.6
    out[0, :, 0, 1] = 0.2  # all channels of the other off by 0.2
    r = per_image_metrics(x, out, m)
    assert r["l1_hole"].item() == pytest.approx((0.6 + 3 * 0.2) / 6)


def test_empty_hole_gives_nan_hole_metrics_but_finite_others():
    x = _images(1)
    r = per_image_metrics(x, x * 0.9, torch.zeros(1, 1, 32, 32))
    assert math.isnan(r["l1_hole"].item()) and math.isnan(r["psnr_hole"].item())
    assert math.isfinite(r["psnr"].item()) and math.isfinite(r["edge_error"].item())


def test_edge_error_zero_for_constant_images_positive_for_edges():
    a = torch.full((1, 3, 16, 16), 0.2)
    b = torch.full((1, 3, 16, 16), 0.9)
    m = _box_mask(1, 16, 4, 8)
    assert per_image_metrics(a, b, m)["edge_error"].item() == pytest.approx(0.0, abs=1e-12)
    edged = a.clone()
    edged[:, :, :, 8:] = 0.9  # a vertical step edge
    assert per_image_metrics(a, edged, m)["edge_error"].item() > 0.1


def test_grayscale_and_numpy_inputs():
    x = _images(2, c=1).numpy().astype(np.float32)
    m = _box_mask(2).numpy().astype(np.uint8)
    r = per_image_metrics(x, x, m)
    assert torch.allclose(r["psnr"], torch.full((2,), PSNR_CAP_DB, dtype=torch.float64))


@pytest.mark.parametrize(
    "outputs, masks, match",
    [
        (torch.rand(2, 3, 32, 16), torch.zeros(2, 1, 32, 32), "outputs shape"),
        (torch.rand(2, 3, 32, 32), torch.zeros(2, 3, 32, 32), "masks must have shape"),
        ((torch.rand(2, 3, 32, 32) * 255).to(torch.uint8), torch.zeros(2, 1, 32, 32), "float"),
    ],
)
def test_bad_inputs_raise(outputs, masks, match):
    with pytest.raises(ValueError, match=match):
        per_image_metrics(torch.rand(2, 3, 32, 32), outputs, masks)


def test_images_smaller_than_ssim_window_raise():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="at least 11 px"):
        per_image_metrics(x, x, torch.zeros(1, 1, 8, 8))


@pytest.mark.parametrize(
    "fraction, label",
    [
        (0.0, "00_10"),
        (0.0999, "00_10"),
        (0.1, "10_20"),
        (0.2, "20_30"),
        (0.3, "30_40"),
        (0.4, "40_50"),
        (0.4999, "40_50"),
        (0.5, "50_100"),
        (1.0, "50_100"),
    ],
)
def test_area_bucket_boundaries(fraction, label):
    assert area_bucket(fraction) == label


def test_area_buckets_cover_zero_to_hundred_contiguously():
    assert AREA_BUCKETS[0][0] == 0 and AREA_BUCKETS[-1][1] == 100
    assert all(a[1] == b[0] for a, b in zip(AREA_BUCKETS, AREA_BUCKETS[1:]))


@pytest.mark.parametrize("fraction", [-0.01, 1.01, float("nan")])
def test_area_bucket_rejects_out_of_range(fraction):
    with pytest.raises(ValueError, match="hole_fraction"):
        area_bucket(fraction)


def test_hole_fractions():
    m = _box_mask(2, 32, 0, 16)  # 16x16 of 32x32 = 25%
    m[1] = 0
    assert hole_fractions(m).tolist() == [0.25, 0.0]
