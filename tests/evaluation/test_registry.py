"""Tests for the metric registry: every reported key is known once, with its direction."""

import pytest
import torch

from pixelheal.evaluation.metrics import AREA_BUCKETS, per_image_metrics
from pixelheal.evaluation.registry import METRICS, higher_is_better, is_better, lookup, metric_name
from pixelheal.evaluation.summary import BUCKET_METRICS, HEADLINE_KEYS, PER_IMAGE_METRICS, POINT_KEYS, summary_keys

DIRECTIONS = {
    "psnr": True,
    "ssim": True,
    "psnr_hole": True,
    "l1_hole": False,
    "edge_error": False,
    "lpips": False,
    "fid": False,
    "ms_per_image": False,
    "nll_bpd": False,
    "loss": False,
}


def test_every_headline_and_bucket_key_is_registered():
    for key in summary_keys():
        assert lookup(key) is not None, key
    assert HEADLINE_KEYS == (
        "test_psnr",
        "test_ssim",
        "test_l1_hole",
        "test_psnr_hole",
        "test_edge_error",
        "test_lpips",
        "test_point_psnr",
        "test_point_ssim",
        "test_point_l1_hole",
        "test_point_psnr_hole",
        "test_point_edge_error",
        "test_fid",
        "test_ms_per_image",
        "test_n_images",
    )


def test_per_image_metrics_are_the_registered_ones():
    images = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    masks = torch.zeros(2, 1, 16, 16)
    masks[:, :, 4:8, 4:8] = 1
    assert set(per_image_metrics(images, images.flip(-1), masks)) == set(PER_IMAGE_METRICS)
    assert set(BUCKET_METRICS) == {*PER_IMAGE_METRICS, "lpips"}


@pytest.mark.parametrize(("name", "higher"), sorted(DIRECTIONS.items()))
def test_direction_of_each_metric(name, higher):
    assert METRICS[name].higher_is_better is higher
    assert higher_is_better(name) is higher
    assert is_better(name, 2.0, 1.0) is higher
    assert is_better(name, 1.0, 2.0) is not higher


def test_a_count_has_no_direction():
    assert METRICS["n_images"].higher_is_better is None
    with pytest.raises(ValueError, match="test_n_images: n_images is a count"):
        is_better("test_n_images", 2, 1)


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("val_psnr", "psnr"),
        ("train_loss", "loss"),
        ("val_nll_bpd", "nll_bpd"),
        ("test_psnr_hole", "psnr_hole"),
        ("test_psnr_hole_area_10_20", "psnr_hole"),
        ("test_lpips_area_50_100", "lpips"),
        ("test_n_images", "n_images"),
        ("ssim", "ssim"),
        ("val_g_loss", "g_loss"),
        ("test_point_psnr_hole", "psnr_hole"),
        ("test_point_l1_hole", "l1_hole"),
    ],
)
def test_lookup_of_prefixed_and_suffixed_keys(key, name):
    assert metric_name(key) == name
    assert lookup(key) is METRICS.get(name)


@pytest.mark.parametrize("key", POINT_KEYS)
def test_a_point_estimate_key_compares_like_its_metric(key):
    plain = key.replace("test_point_", "test_")
    assert lookup(key) is lookup(plain) is not None
    assert is_better(key, 2.0, 1.0) is higher_is_better(plain) is DIRECTIONS[metric_name(plain)]


def test_every_area_bucket_suffix_is_stripped():
    for _, _, label in AREA_BUCKETS:
        assert metric_name(f"test_edge_error_area_{label}") == "edge_error"


@pytest.mark.parametrize("key", ["train_g_loss", "val_d_loss", "adversarial", "val_edge", "train_l1"])
def test_unregistered_names_are_losses(key):
    assert lookup(key) is None
    assert higher_is_better(key) is False
    assert is_better(key, 0.5, 1.0) and not is_better(key, 1.0, 0.5)


def test_first_value_is_always_better_and_nan_never_is():
    assert is_better("val_psnr", float("-inf"), None)
    assert not is_better("val_psnr", float("nan"), 20.0)
    assert not is_better("val_loss", float("nan"), 1.0)


def test_registered_metrics_are_described():
    for metric in METRICS.values():
        assert metric.description and metric.summary in ("bucketed", "overall", "none")
