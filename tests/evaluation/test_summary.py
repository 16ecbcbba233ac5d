"""Tests for summarize(): same keys always, None for unavailable."""

import math

import pytest
import torch

from pixelheal.evaluation.metrics import AREA_BUCKETS
from pixelheal.evaluation.summary import summarize, summary_keys


def _per_image(values: list[float]) -> dict[str, torch.Tensor]:
    t = torch.tensor(values, dtype=torch.float64)
    return {k: t.clone() for k in ("psnr", "ssim", "l1_hole", "psnr_hole", "edge_error")}


def test_keys_identical_regardless_of_inputs():
    lpips = torch.tensor([0.1, 0.3])
    full = summarize(_per_image([1.0, 3.0]), torch.tensor([0.05, 0.6]), lpips, 12.5, 2.0)
    sparse = summarize(_per_image([2.0]), torch.tensor([0.25]), None, None, 0.5)
    assert list(full) == list(sparse) == summary_keys()
    headline = {
        "test_psnr",
        "test_ssim",
        "test_l1_hole",
        "test_psnr_hole",
        "test_edge_error",
        "test_lpips",
        *(f"test_point_{m}" for m in ("psnr", "ssim", "l1_hole", "psnr_hole", "edge_error")),
        "test_fid",
        "test_ms_per_image",
        "test_n_images",
    }
    assert headline <= set(full)
    assert len(full) == len(headline) + 6 * len(AREA_BUCKETS)
    for metric in ("psnr", "ssim", "l1_hole", "psnr_hole", "edge_error", "lpips"):
        for _, _, label in AREA_BUCKETS:
            assert f"test_{metric}_area_{label}" in full


def test_point_keys_repeat_the_plain_ones_without_a_point_estimate():
    s = summarize(_per_image([1.0, 3.0]), torch.tensor([0.05, 0.6]), None, None, 2.0)
    for m in ("psnr", "ssim", "l1_hole", "psnr_hole", "edge_error"):
        assert s[f"test_point_{m}"] == s[f"test_{m}"]


def test_point_keys_are_the_means_of_the_point_estimate():
    s = summarize(_per_image([1.0, 3.0]), torch.tensor([0.05, 0.6]), None, None, 2.0, point=_per_image([4.0, 8.0]))
    assert s["test_point_psnr_hole"] == pytest.approx(6.0) and s["test_psnr_hole"] == pytest.approx(2.0)
    assert not any(key.startswith("test_point_") and "_area_" in key for key in s)  # headline means only


def test_a_point_estimate_must_be_complete_and_one_per_image():
    point = _per_image([1.0, 2.0])
    with pytest.raises(ValueError, match=r"point psnr has 2 values, expected one per image \(1\)"):
        summarize(_per_image([1.0]), torch.tensor([0.1]), None, None, 1.0, point=point)
    del point["ssim"]
    with pytest.raises(ValueError, match=r"point lacks metrics \['ssim'\]"):
        summarize(_per_image([1.0, 2.0]), torch.tensor([0.1, 0.2]), None, None, 1.0, point=point)


def test_values_and_buckets():
    fractions, lpips = torch.tensor([0.05, 0.07, 0.6]), torch.tensor([0.1, 0.3, 0.5])
    s = summarize(_per_image([1.0, 3.0, 5.0]), fractions, lpips, 12.5, 2.0)
    assert s["test_psnr"] == pytest.approx(3.0)
    assert s["test_psnr_area_00_10"] == pytest.approx(2.0)
    assert s["test_psnr_area_50_100"] == pytest.approx(5.0)
    assert s["test_psnr_area_20_30"] is None  # empty bucket
    assert s["test_lpips"] == pytest.approx(0.3)
    assert s["test_lpips_area_00_10"] == pytest.approx(0.2)
    assert s["test_fid"] == 12.5 and s["test_ms_per_image"] == 2.0 and s["test_n_images"] == 3


def test_unavailable_metrics_are_none_not_numbers():
    s = summarize(_per_image([1.0]), torch.tensor([0.15]), None, None, 1.0)
    assert s["test_lpips"] is None and s["test_fid"] is None
    assert all(s[f"test_lpips_area_{label}"] is None for _, _, label in AREA_BUCKETS)


def test_nan_hole_metrics_are_skipped_and_all_nan_is_none():
    per = _per_image([1.0, 3.0])
    per["l1_hole"] = torch.tensor([float("nan"), 0.5], dtype=torch.float64)
    per["psnr_hole"] = torch.tensor([float("nan"), float("nan")], dtype=torch.float64)
    s = summarize(per, torch.tensor([0.0, 0.3]), None, float("nan"), 1.0)
    assert s["test_l1_hole"] == pytest.approx(0.5)
    assert s["test_psnr_hole"] is None and s["test_fid"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in s.values())


def test_missing_metric_or_length_mismatch_raises():
    per = _per_image([1.0, 2.0])
    with pytest.raises(ValueError, match="one per image"):
        summarize(per, torch.tensor([0.1]), None, None, 1.0)
    del per["ssim"]
    with pytest.raises(ValueError, match="ssim"):
        summarize(per, torch.tensor([0.1, 0.2]), None, None, 1.0)
