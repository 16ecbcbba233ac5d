"""Loss terms: known values, zero cases, finite gradients, and gradients reaching G and D."""

import math

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.image import structural_similarity_index_measure

from pixelheal.models import make_model
from pixelheal.models.losses import (
    EDGE_EPS,
    adversarial_loss,
    edge_loss,
    edge_magnitude,
    l1_loss,
    pixel_error,
    ssim_loss,
)


def _images(seed: int = 0, shape: tuple[int, ...] = (2, 3, 16, 16)) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_edge_loss_of_two_constant_images_is_zero():
    a, b = torch.full((2, 3, 16, 16), 0.2), torch.full((2, 3, 16, 16), 0.9)
    assert edge_loss(a, b).item() == 0.0


def test_edge_loss_weighs_a_thin_line_more_than_l1_does():
    flat = torch.full((1, 1, 16, 16), 0.5)
    line = flat.clone()
    line[..., 8] = 0.55  # a faint one-pixel vertical line: small in L1, two edges for Sobel
    assert edge_loss(line, flat) > 5 * l1_loss(line, flat) > 0


def test_edge_gradient_is_finite_on_flat_images():
    prediction = torch.full((1, 3, 8, 8), 0.5, requires_grad=True)
    edge_loss(prediction, _images(shape=(1, 3, 8, 8))).backward()
    assert torch.isfinite(prediction.grad).all()


def test_edge_magnitude_is_that_of_the_3x3_sobel_kernels():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 9, 7, dtype=torch.float64)
    gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype)
    kernels = torch.stack([gx, gx.T]).unsqueeze(1).repeat(3, 1, 1, 1)  # (6, 1, 3, 3): d/dx, d/dy per channel
    derivatives = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernels, groups=3).view(2, 3, 2, 9, 7)
    expected = torch.sqrt(derivatives.square().sum(2) + EDGE_EPS)
    assert torch.allclose(edge_magnitude(x), expected, atol=1e-12)


def test_edge_magnitude_is_per_channel_and_zero_where_flat():
    x = torch.zeros(1, 2, 8, 8)
    x[0, 1, :, 4:] = 1.0  # an edge in channel 1 only
    magnitude = edge_magnitude(x)
    assert magnitude.shape == x.shape
    assert magnitude[0, 0].max() < 1e-2
    assert magnitude[0, 1, :, 3:5].min() > 1.0


def test_ssim_loss_of_identical_images_is_zero():
    x = _images()
    assert abs(ssim_loss(x, x).item()) < 1e-6


def test_ssim_loss_grows_with_noise_and_works_on_small_images():
    x = _images(shape=(2, 3, 8, 8))
    slightly = (x + 0.05 * _images(1, x.shape)).clamp(0, 1)
    assert 0 < ssim_loss(slightly, x) < ssim_loss(_images(2, x.shape), x)


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (2, 1, 40, 24), (3, 3, 7, 9), (1, 2, 3, 5)])
def test_ssim_loss_is_one_minus_torchmetrics_ssim(shape):
    """The separable computation is torchmetrics' Gaussian SSIM (its window shrunk to fit small images)."""
    x = _images(shape=shape)
    y = (x + 0.2 * _images(1, shape) - 0.1).clamp(0, 1)
    sigma = 1.5 if min(shape[-2:]) >= 11 else ((min(shape[-2:]) - 1) // 2 - 0.5) / 3.5
    reference = structural_similarity_index_measure(y, x, data_range=1.0, sigma=sigma)
    assert ssim_loss(y, x).item() == pytest.approx(1 - reference.item(), abs=1e-6)


def test_ssim_loss_under_bfloat16_autocast_is_the_float32_loss():
    x = _images(shape=(2, 3, 32, 32))
    y = (x + 0.01 * _images(1, x.shape)).clamp(0, 1)  # variances small enough for bfloat16 to lose them
    with torch.autocast("cpu", torch.bfloat16):
        loss = ssim_loss(y, x)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(ssim_loss(y, x).item(), abs=1e-7)


def test_ssim_loss_names_too_small_images():
    with pytest.raises(ValueError, match="ssim"):
        ssim_loss(torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2))


def test_l1_and_mse_values():
    a, b = torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5)
    assert l1_loss(a, b).item() == pytest.approx(0.5)
    assert torch.equal(pixel_error(a, b, "l1"), torch.full_like(a, 0.5))
    assert torch.equal(pixel_error(a, b, "mse"), torch.full_like(a, 0.25))


def test_bce_adversarial_values():
    undecided = torch.zeros(2, 1, 3, 3)
    assert adversarial_loss(undecided, True).item() == pytest.approx(math.log(2))
    assert adversarial_loss(undecided, False).item() == pytest.approx(math.log(2))
    confident_real = torch.full((2, 1, 3, 3), 20.0)
    assert adversarial_loss(confident_real, True).item() < 1e-6
    assert adversarial_loss(confident_real, False).item() == pytest.approx(20.0, rel=1e-4)


def test_lsgan_adversarial_values():
    ones = torch.ones(1, 1, 2, 2)
    assert adversarial_loss(ones, True, "lsgan").item() == 0.0
    assert adversarial_loss(ones, False, "lsgan").item() == 1.0


def test_unknown_adversarial_loss_is_named():
    with pytest.raises(ValueError, match="lsgan"):
        adversarial_loss(torch.zeros(1), True, "wasserstein")


@pytest.mark.parametrize(
    "loss",
    [
        lambda p, t: pixel_error(p, t, "l1").mean(),
        lambda p, t: pixel_error(p, t, "mse").mean(),
        edge_loss,
        ssim_loss,
    ],
    ids=["l1", "mse", "edge", "ssim"],
)
def test_reconstruction_losses_are_differentiable(loss):
    prediction = _images().requires_grad_(True)
    loss(prediction, _images(1)).backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0


@pytest.mark.parametrize("variant", ["whole_image", "hole_context"])
def test_a_training_step_updates_both_generator_and_discriminator(variant):
    torch.manual_seed(0)
    model = make_model("gan", variant=variant, base_channels=4, disc_channels=4, crop_size=16).train()
    optimizers = model.make_optimizers(lambda params: torch.optim.Adam(params, lr=1e-3, betas=(0.5, 0.999)))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    images = _images()
    masks = torch.zeros(2, 1, 16, 16)
    masks[:, :, 4:10, 5:12] = 1
    # Three steps: the head starts at zero, so the attention's gain gamma gets a gradient from the
    # second step on, and its q/k/v only once gamma has left 0.
    for _ in range(2):
        model.training_step(images, masks, optimizers)
    terms = model.training_step(images, masks, optimizers)

    assert {"adversarial", "l1", "edge", "ssim", "d_loss", "g_loss", "loss"} <= set(terms)
    assert terms["loss"] == terms["g_loss"]
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if p.ndim > 1:  # every convolution kernel moved (biases before BatchNorm get no gradient)
            assert not torch.equal(p, before[name]), name
    assert model.generator.attention.gamma.item() != 0.0


def test_weighted_l1_is_a_weighted_mean():
    prediction, target = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert l1_loss(prediction, target, torch.ones(1, 1, 2, 2)) == pytest.approx(l1_loss(prediction, target).item())
    hole_first = torch.tensor([[[[3.0, 1.0], [1.0, 1.0]]]])  # the erroneous pixel counts 3 times
    assert l1_loss(prediction, target, hole_first).item() == pytest.approx(3 / 6)


def test_log_mse_is_minus_the_mean_per_image_psnr():
    from pixelheal.models.losses import LOG_MSE_FLOOR, log_mse_loss, weighted_error

    target = torch.zeros(2, 3, 4, 4)
    prediction = target.clone()
    prediction[0] += 0.1  # 20 dB
    prediction[1] += 0.01  # 40 dB
    weights = torch.ones(2, 1, 4, 4)
    expected = 10 * math.log10(0.01 + LOG_MSE_FLOOR) / 2 + 10 * math.log10(1e-4 + LOG_MSE_FLOOR) / 2
    assert log_mse_loss(prediction, target, weights).item() == pytest.approx(expected, rel=1e-5)
    # The pooled MSE is set by the worse image; the mean log weighs both images' PSNRs alike.
    assert weighted_error(prediction, target, weights, "mse").item() == pytest.approx((0.01 + 1e-4) / 2, rel=1e-5)


def test_log_mse_weights_pixels_within_each_image():
    from pixelheal.models.losses import LOG_MSE_FLOOR, log_mse_loss

    target, prediction = torch.zeros(1, 1, 1, 2), torch.tensor([[[[0.0, 0.2]]]])
    weights = torch.tensor([[[[1.0, 3.0]]]])  # the erring pixel counts three times: MSE 3 * 0.04 / 4
    assert log_mse_loss(prediction, target, weights).item() == pytest.approx(10 * math.log10(0.03 + LOG_MSE_FLOOR))
