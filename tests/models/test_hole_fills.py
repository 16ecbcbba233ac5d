"""Interpolated hole fills: the networks' input and, for the regression architectures, their starting point."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.restoration import inpaint_biharmonic

from pixelheal.masks import make_mask_generator
from pixelheal.models import make_model
from pixelheal.models.fills import (
    biharmonic_fill,
    conjugate_gradients_only,
    fill_holes,
    masked_input,
    smooth_fill,
)


def ramp_with_hole() -> tuple[torch.Tensor, torch.Tensor]:
    ramp = torch.linspace(0, 1, 16).expand(1, 3, 16, 16).clone()  # left-right gradient
    masks = torch.zeros(1, 1, 16, 16)
    masks[..., 4:12, 5:11] = 1
    return ramp, masks


def test_smooth_fill_keeps_known_pixels_and_interpolates_holes():
    ramp, masks = ramp_with_hole()
    filled = smooth_fill(ramp, masks)
    known = masks.expand_as(ramp) == 0
    assert torch.equal(filled[known], ramp[known])
    assert (filled - ramp).abs().max() < 0.1  # far closer than the zero fill
    assert torch.all(filled[..., 8, 5:11].diff() > 0)  # and still increasing across the hole
    assert torch.allclose(smooth_fill(ramp, torch.ones(1, 1, 16, 16)), torch.full_like(ramp, 0.5))


def test_biharmonic_fill_reproduces_a_linear_ramp_exactly():
    ramp, masks = ramp_with_hole()
    assert torch.allclose(biharmonic_fill(ramp, masks), ramp, atol=1e-4)


def test_biharmonic_fill_solves_the_system_scikit_image_solves(cifar_sample):
    files = sorted((cifar_sample / "test").glob("*/0000.jpg"))[:8]
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])  # (8, 32, 32, 3)
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2) / 255
    generator = make_mask_generator("irregular", preset="medium", min_hole_fraction=0.05, max_hole_fraction=0.5)
    rng = np.random.default_rng(0)
    masks = torch.from_numpy(np.stack([generator(32, 32, rng) for _ in files])).float()  # (8, 1, 32, 32)
    expected = np.stack(
        [
            inpaint_biharmonic(image.permute(1, 2, 0).numpy(), mask[0].numpy().astype(bool), channel_axis=-1)
            for image, mask in zip(images.double(), masks)
        ]
    ).transpose(0, 3, 1, 2)
    exact = biharmonic_fill(images.double(), masks.double())  # factorised: eager, on the CPU, 32x32
    assert np.abs(exact.numpy() - expected).max() < 1e-4
    assert (biharmonic_fill(images, masks) - exact.float()).abs().max() < 0.05 / 255
    with conjugate_gradients_only():  # what an exported graph runs
        converged = biharmonic_fill(images.double(), masks.double(), tolerance=0.0)
        assert np.abs(converged.numpy() - expected).max() < 1e-4
        # The default tolerance stops in float32 within a grey level of it everywhere: networks that start
        # from the fill start at the baseline's completion.
        assert (biharmonic_fill(images, masks) - exact.float()).abs().max() < 1 / 255
        # Stopped early, the fill is measurably further off (so the tolerance is what decides).
        assert (biharmonic_fill(images, masks, max_iterations=10) - exact.float()).abs().max() > 1 / 255


def test_the_factorised_and_the_iterated_solve_agree_and_large_images_iterate():
    torch.manual_seed(0)
    images, masks = torch.rand(3, 3, 40, 40, dtype=torch.float64), (torch.rand(3, 1, 40, 40) < 0.3).double()
    masks[1] = 1  # nothing known: both keep mid-grey
    small = images[..., :32, :32], masks[..., :32, :32]
    with conjugate_gradients_only():
        iterated_small = biharmonic_fill(*small, tolerance=1e-12, max_iterations=5000)
        iterated_large = biharmonic_fill(images, masks)
    assert torch.allclose(biharmonic_fill(*small), iterated_small, atol=1e-8)
    assert torch.equal(biharmonic_fill(images, masks), iterated_large)  # 1,600 pixels: over DIRECT_MAX_PIXELS


@pytest.mark.parametrize("shape", [(1, 7), (7, 1), (2, 3), (3, 5), (5, 2), (2, 9), (9, 2), (4, 4)])
def test_the_factorised_solve_agrees_on_narrow_images_and_single_pixel_holes(shape):
    torch.manual_seed(0)
    images = torch.rand(3, 2, *shape, dtype=torch.float64)
    masks = (torch.rand(3, 1, *shape) < 0.5).double()
    masks[0] = 0
    masks[0, 0, shape[0] // 2, shape[1] // 2] = 1  # a one-pixel hole
    masks[1, 0, 0, 0] = 0  # at least one known pixel
    with conjugate_gradients_only():
        iterated = biharmonic_fill(images, masks, tolerance=1e-13, max_iterations=5000)
    assert torch.allclose(biharmonic_fill(images, masks), iterated, atol=1e-8)


def test_an_empty_batch_fills_to_an_empty_batch():
    assert biharmonic_fill(torch.rand(0, 3, 8, 8), torch.ones(0, 1, 8, 8)).shape == (0, 3, 8, 8)


def test_each_image_and_channel_is_its_own_system():
    torch.manual_seed(0)
    images, masks = torch.rand(4, 3, 16, 16), (torch.rand(4, 1, 16, 16) < 0.4).float()
    masks[1] = 0  # nothing to fill
    masks[2] = 1  # nothing known
    batched = biharmonic_fill(images, masks)
    for i in range(4):
        assert torch.allclose(batched[i], biharmonic_fill(images[i : i + 1], masks[i : i + 1])[0], atol=1e-6)
    colour = biharmonic_fill(images[:1], masks[:1])
    for c in range(3):
        assert torch.allclose(colour[:, c], biharmonic_fill(images[:1, c : c + 1], masks[:1])[:, 0], atol=1e-6)
    assert torch.equal(batched[1], images[1])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("fill", ["smooth", "biharmonic"])
def test_fills_keep_the_input_dtype_and_stay_finite(fill, dtype):
    images, masks = torch.rand(3, 3, 16, 16), (torch.rand(3, 1, 16, 16) < 0.3).float()
    masks[1], masks[2] = 0, 1
    filled = fill_holes(images.to(dtype), masks.to(dtype), fill)
    assert filled.dtype == dtype
    assert torch.isfinite(filled).all()
    assert torch.allclose(filled.float(), fill_holes(images, masks, fill), atol=1e-2)


@pytest.mark.parametrize("fill", ["smooth", "biharmonic"])
def test_fills_have_finite_gradients_even_for_converged_or_hole_free_systems(fill):
    torch.manual_seed(0)
    images = torch.rand(3, 3, 12, 12, dtype=torch.float64, requires_grad=True)
    masks = (torch.rand(3, 1, 12, 12) < 0.3).double()
    masks[1] = 0  # a system with nothing to solve: its conjugate-gradient denominators are 0
    fill_holes(images, masks, fill).sum().backward()
    assert torch.isfinite(images.grad).all()
    # The fill is linear in the known pixels: its gradient is what moving one known pixel does to the sum.
    assert torch.allclose(images.grad[1], torch.ones_like(images.grad[1]))


def test_the_factorised_fill_has_the_gradient_of_its_solution():
    torch.manual_seed(0)
    images = torch.rand(2, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    masks = (torch.rand(2, 1, 8, 8) < 0.4).double()
    assert torch.autograd.gradcheck(lambda x: biharmonic_fill(x, masks), images)  # 8x8: factorised, not iterated


def test_biharmonic_fill_of_an_image_without_known_pixels_is_mid_grey():
    images = torch.rand(2, 3, 8, 8)
    assert torch.allclose(biharmonic_fill(images, torch.ones(2, 1, 8, 8)), torch.full_like(images, 0.5))


def test_masked_input_zeroes_the_hole_and_appends_the_mask():
    images, masks = torch.rand(2, 3, 8, 8), (torch.rand(2, 1, 8, 8) < 0.3).float()
    x = masked_input(images, masks)
    assert x.shape == (2, 4, 8, 8)
    assert torch.equal(x[:, 3:], masks) and torch.equal(x[:, :3], images * (1 - masks))


def test_unknown_fill_is_refused_with_its_parameter_name():
    with pytest.raises(ValueError, match="hole_fill"):
        fill_holes(torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8), "telea")


@pytest.mark.parametrize(
    ("arch", "hparams"),
    [
        ("unet_aspp", {"widths": [4, 8]}),
        ("gan", {"variant": "whole_image", "base_channels": 4, "disc_channels": 4}),
    ],
)
@pytest.mark.parametrize("fill", ["smooth", "biharmonic"])
def test_an_untrained_network_returns_its_fill_and_learns_a_correction(arch, hparams, fill):
    torch.manual_seed(0)
    model = make_model(arch, hole_fill=fill, **hparams)
    images, masks = torch.rand(4, 3, 16, 16), (torch.rand(4, 1, 16, 16) < 0.3).float()
    expected = fill_holes(images, masks, fill).clamp(1e-3, 1 - 1e-3)
    assert torch.allclose(model.eval()(images, masks), expected, atol=1e-5)
    optimizers = model.train().make_optimizers(lambda params: torch.optim.Adam(params, lr=1e-2))
    for _ in range(3):
        model.training_step(images, masks, optimizers)
    assert not torch.allclose(model.eval()(images, masks), expected, atol=1e-3)
