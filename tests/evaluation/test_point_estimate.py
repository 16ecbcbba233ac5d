"""Point-estimate completions: the mean of several samples for sampling architectures, the one completion otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelheal.evaluation.scoring import complete_draws
from pixelheal.models import make_model
from pixelheal.models.base import mean_completion

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pixelcnn():
    torch.manual_seed(0)
    return make_model("pixelcnn", hidden=8, n_blocks=1, cond_layers=1, in_channels=3).eval()  # softmax output


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return make_model("unet_frm", widths=[4, 8], in_channels=3).eval()


def _batch(n: int = 2, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))
    masks = torch.zeros(n, 1, size, size)
    masks[:, :, 2:5, 3:6] = 1
    return images, masks


def _uint8(n: int = 3, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    masks = np.zeros((n, 1, size, size), np.uint8)
    masks[:, :, 1:5, 2:6] = 1
    return rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8), masks


def test_the_point_estimate_is_the_mean_of_the_samples(pixelcnn):
    images, masks = _batch()
    point = mean_completion(images, masks, pixelcnn.inpaint_draws(images, masks, 3, torch.Generator().manual_seed(1)))
    samples = pixelcnn.inpaint_samples(images, masks, 3, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(point, torch.stack(samples).mean(0), atol=1e-6)
    known = masks.expand_as(images) == 0
    assert torch.equal(point[known], images[known])  # known pixels exact, not a rounded mean
    levels = point[~known] * 255
    assert not torch.allclose(levels, levels.round())  # averaged: off the 256 levels a single sample takes


def test_copies_drawn_in_groups_are_the_mean_of_those_groups(pixelcnn):
    images, masks = _batch()
    point = mean_completion(
        images, masks, pixelcnn.inpaint_draws(images, masks, 3, torch.Generator().manual_seed(1), max_batch=len(images))
    )
    generator = torch.Generator().manual_seed(1)
    one_by_one = [pixelcnn.inpaint_samples(images, masks, 1, generator=generator)[0] for _ in range(3)]
    assert torch.allclose(point, torch.stack(one_by_one).mean(0), atol=1e-6)


def test_a_deterministic_architecture_returns_its_one_completion(unet):
    images, masks = _batch()
    assert not unet.stochastic
    (draw,) = unet.inpaint_draws(images, masks, 4)
    assert torch.equal(draw, unet.inpaint(images, masks))


@pytest.mark.parametrize("n_samples", [0, -1])
def test_no_samples_are_refused(pixelcnn, unet, n_samples):
    images, masks = _batch()
    for model in (pixelcnn, unet):
        with pytest.raises(ValueError, match="n_samples must be at least 1"):
            model.inpaint_draws(images, masks, n_samples)


def test_point_completions_are_seeded_and_composited(pixelcnn):
    images, masks = _uint8()
    first = complete_draws(pixelcnn, images, masks, n_samples=2, seed=3, batch_size=2, device=CPU)
    again = complete_draws(pixelcnn, images, masks, n_samples=2, seed=3, batch_size=2, device=CPU)
    other = complete_draws(pixelcnn, images, masks, n_samples=2, seed=4, batch_size=2, device=CPU)
    for completions in (first.first, first.point):
        assert completions.dtype == np.uint8 and completions.shape == images.shape
        known = np.broadcast_to(masks == 0, images.shape)
        assert np.array_equal(completions[known], images[known])
    assert np.array_equal(first.point, again.point) and not np.array_equal(first.point, other.point)
    assert np.array_equal(first.first, again.first) and not np.array_equal(first.point, first.first)
    assert first.ms_per_image > 0


def test_the_first_draw_is_one_of_the_samples_the_point_estimate_averages(pixelcnn):
    images, masks = _uint8(n=2)
    draws = complete_draws(pixelcnn, images, masks, n_samples=3, seed=3, batch_size=len(images), device=CPU)
    x, m = torch.from_numpy(images).float() / 255, torch.from_numpy(masks).float()
    samples = pixelcnn.inpaint_draws(x, m, 3, torch.Generator().manual_seed(3), max_batch=len(images))
    assert np.array_equal(draws.first, (samples[0] * 255).round().to(torch.uint8).numpy())
    mean = (torch.stack(samples).mean(0) * 255).round().to(torch.uint8).numpy()
    hole = np.broadcast_to(masks == 1, images.shape)
    assert np.array_equal(draws.point[hole], mean[hole])


def test_a_deterministic_architecture_needs_no_second_inference(unet, monkeypatch):
    def no_inference(*args, **kwargs):
        raise AssertionError("a deterministic architecture was run again for its point estimate")

    monkeypatch.setattr(unet, "forward", no_inference)
    images, masks = _uint8()
    assert complete_draws(unet, images, masks, n_samples=4, seed=0, batch_size=2, device=CPU) is None
