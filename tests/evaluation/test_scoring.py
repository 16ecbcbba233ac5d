"""Scoring completions: uint8 outputs batch by batch with their time, and the same metric keys for every method."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from pixelheal.evaluation.perceptual import PerceptualMetrics
from pixelheal.evaluation.scoring import complete_images, score_completions
from pixelheal.evaluation.summary import POINT_KEYS, summary_keys
from pixelheal.models.base import composite


def _data(n: int = 5, size: int = 16):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    masks = np.zeros((n, 1, size, size), np.uint8)
    masks[:, :, 4:10, 5:11] = 1
    return images, masks


def _grey_fill(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """A stand-in architecture: mid grey in the hole, the image elsewhere."""
    return composite(x, m, torch.full_like(x, 0.5))


def test_completions_are_composited_uint8_in_the_input_layout():
    images, masks = _data()
    outputs, _ = complete_images(_grey_fill, images, masks, batch_size=2, device=torch.device("cpu"))
    assert outputs.dtype == np.uint8 and outputs.shape == images.shape
    hole = np.broadcast_to(masks.astype(bool), images.shape)
    assert np.array_equal(outputs[~hole], images[~hole])
    assert (outputs[hole] == 128).all()  # 0.5 * 255 rounds to 128


def test_the_time_is_per_image_and_counts_only_the_inpainting(monkeypatch):
    clock = {"t": 0.0}

    def slow_fill(x, m):
        clock["t"] += 0.010 * len(x)  # 10 ms per image inside the call, nothing outside it
        return _grey_fill(x, m)

    monkeypatch.setattr(time, "perf_counter", lambda: clock["t"])
    images, masks = _data(n=5)
    _, ms_per_image = complete_images(slow_fill, images, masks, batch_size=2, device=torch.device("cpu"))
    assert ms_per_image == pytest.approx(10.0)


def test_no_images_take_no_time():
    images, masks = _data(n=0)
    outputs, ms_per_image = complete_images(_grey_fill, images, masks, batch_size=4, device=torch.device("cpu"))
    assert outputs.shape == images.shape and ms_per_image == 0.0


def test_scores_have_every_summary_key_and_name_the_unavailable_metrics():
    images, masks = _data()
    outputs, ms = complete_images(_grey_fill, images, masks, batch_size=2, device=torch.device("cpu"))
    scores = score_completions(images, masks, outputs, PerceptualMetrics(lpips="none", fid="none"), ms, batch_size=2)
    assert set(scores) == {"metrics", "unavailable"}
    assert list(scores["metrics"]) == summary_keys()
    assert scores["metrics"]["test_n_images"] == 5 and scores["metrics"]["test_ms_per_image"] == ms
    assert scores["metrics"]["test_lpips"] is None and scores["metrics"]["test_fid"] is None
    assert scores["unavailable"] == {"test_lpips": "disabled in parameters", "test_fid": "disabled in parameters"}


def test_a_perfect_completion_scores_better_than_a_grey_one():
    images, masks = _data()
    grey, _ = complete_images(_grey_fill, images, masks, batch_size=5, device=torch.device("cpu"))
    none = PerceptualMetrics(lpips="none", fid="none")
    perfect = score_completions(images, masks, images.copy(), none, 0.0)["metrics"]
    worse = score_completions(images, masks, grey, PerceptualMetrics(lpips="none", fid="none"), 0.0)["metrics"]
    assert perfect["test_l1_hole"] == 0.0 < worse["test_l1_hole"]
    assert perfect["test_psnr"] > worse["test_psnr"]


def test_a_method_without_point_estimate_reports_its_completions_as_it():
    images, masks = _data()
    grey, _ = complete_images(_grey_fill, images, masks, batch_size=5, device=torch.device("cpu"))
    metrics = score_completions(images, masks, grey, PerceptualMetrics(lpips="none", fid="none"), 0.0)["metrics"]
    for key in POINT_KEYS:
        assert metrics[key] == metrics[key.replace("test_point_", "test_")]


def test_point_keys_score_the_point_estimate_and_the_plain_keys_the_one_completion():
    images, masks = _data()
    grey, _ = complete_images(_grey_fill, images, masks, batch_size=5, device=torch.device("cpu"))
    none = PerceptualMetrics(lpips="none", fid="none")
    metrics = score_completions(images, masks, grey, none, 0.0, point_outputs=images.copy())["metrics"]
    plain = score_completions(images, masks, grey, PerceptualMetrics(lpips="none", fid="none"), 0.0)["metrics"]
    assert metrics["test_point_l1_hole"] == 0.0 < metrics["test_l1_hole"] == plain["test_l1_hole"]
    assert list(metrics) == summary_keys()
