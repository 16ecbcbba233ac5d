"""Loss terms of the convolutional architectures: reconstruction (per-pixel, L1, Sobel edge, SSIM) and adversarial.

contract: reconstruction losses take float tensors (B, C, H, W) in [0, 1], prediction first and
target second. Adversarial losses take raw discriminator outputs (logits for "bce", scores for
"lsgan") and whether the target is "real".
"""

from __future__ import annotations

import functools
import typing
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

PixelLoss = Literal["mse", "l1"]
# What a regression architecture minimises: a weighted mean of a pixel error, or "log_mse", the mean over
# images of 10 log10(weighted MSE), i.e. minus the mean per-image PSNR the test reports. A pooled MSE
# misweighs that metric: it spends its gains on the hard images and lets small errors lower the easy
# images' high PSNRs, so a network can lower its MSE while its mean PSNR falls below its fill's.
RegressionLoss = Literal["mse", "l1", "log_mse"]
LOG_MSE_FLOOR = 1e-5  # an image's MSE floor (50 dB): nearly perfect images do not dominate the gradient
AdversarialLoss = Literal["bce", "lsgan"]
ADVERSARIAL_KINDS: tuple[str, ...] = typing.get_args(AdversarialLoss)
# The magnitude's sqrt is not differentiable at 0 (flat regions): a small floor keeps the
# gradient finite there, and a constant image still has exactly the same magnitude as another.
EDGE_EPS = 1e-6
# torchmetrics' default Gaussian SSIM window (sigma 1.5 → 11 px); smaller images get a narrower one.
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11


def pixel_error(prediction: Tensor, target: Tensor, kind: PixelLoss = "l1") -> Tensor:
    """Per-pixel error (B, C, H, W): absolute ("l1") or squared ("mse")."""
    error = prediction - target
    return error.abs() if kind == "l1" else error.square()


def weighted_error(prediction: Tensor, target: Tensor, weights: Tensor, kind: RegressionLoss) -> Tensor:
    """The loss `kind` of `prediction` against `target` with per-pixel `weights` (B, 1, H, W) (a scalar)."""
    if kind != "log_mse":
        return (weights * pixel_error(prediction, target, kind)).mean()
    return log_mse_loss(prediction, target, weights)


def log_mse_loss(prediction: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """Mean over images of 10 log10 of the `weights`-weighted MSE (dB; minus the mean per-image PSNR)."""
    weights = weights.expand_as(prediction).flatten(1)
    mse = (weights * (prediction - target).square().flatten(1)).sum(1) / weights.sum(1).clamp_min(1e-12)
    return 10 * torch.log10(mse + LOG_MSE_FLOOR).mean()


def l1_loss(prediction: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean absolute error; with `weights` (broadcastable, e.g. (B, 1, H, W)) a weighted mean."""
    error = pixel_error(prediction, target, "l1")
    if weights is None:
        return error.mean()
    weights = weights.expand_as(error)
    return (weights * error).sum() / weights.sum().clamp_min(1e-12)


def sobel_gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel Sobel derivatives d/dx and d/dy, each (B, C, H, W), of the replicate-padded image.

    The kernels [-1, 0, 1] x [1, 2, 1] are separable, so each derivative is a difference of shifted slices and a
    [1, 2, 1] sum of them: a depthwise 3x3 convolution over 3 channels ran at about 13 GFLOP/s on the CPU and,
    with its backward, took over 1 % of a GAN training step.
    """
    # Replicate padding: a constant image has zero gradient at its border too.
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")  # (B, C, H+2, W+2)
    across = padded[..., 2:] - padded[..., :-2]  # x[j + 1] - x[j - 1], every padded row: (B, C, H+2, W)
    summed = padded[..., :-2] + 2 * padded[..., 1:-1] + padded[..., 2:]  # [1, 2, 1] along the row
    d_dx = across[..., :-2, :] + 2 * across[..., 1:-1, :] + across[..., 2:, :]
    d_dy = summed[..., 2:, :] - summed[..., :-2, :]
    return d_dx, d_dy


def edge_magnitude(x: Tensor) -> Tensor:
    """Differentiable per-channel Sobel magnitude (B, C, H, W)."""
    d_dx, d_dy = sobel_gradients(x)
    return torch.sqrt(d_dx.square() + d_dy.square() + EDGE_EPS)


def edge_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Sobel edge-aware loss: L1 between the edge magnitudes of prediction and target."""
    return (edge_magnitude(prediction) - edge_magnitude(target)).abs().mean()


def _ssim_sigma(height: int, width: int) -> float:
    """Gaussian sigma whose torchmetrics window (2*int(3.5*sigma+0.5)+1 px) fits the image."""
    side = min(height, width)
    if side < 3:
        raise ValueError(f"ssim loss: images must be at least 3x3 pixels, got {height}x{width}")
    if side >= SSIM_WINDOW:
        return SSIM_SIGMA
    return ((side - 1) // 2 - 0.5) / 3.5


@functools.lru_cache(maxsize=16)
def _gaussian_blur_matrix(size: int, sigma: float) -> Tensor:
    """(size, size) matrix of torchmetrics' 1-D Gaussian window over a reflect-padded axis: blur(x) = M x along it.

    The window is 2 int(3.5 sigma + 0.5) + 1 taps, normalised to sum 1, and the padding reflects about the edge
    pixel (torch's "reflect"), as torchmetrics' SSIM pads and convolves; folding the padding into the matrix
    gives the same sums without a padded copy.
    """
    half = int(3.5 * sigma + 0.5)
    taps = torch.arange(-half, half + 1, dtype=torch.float64)
    window = torch.exp(-((taps / sigma) ** 2) / 2)
    window /= window.sum()
    matrix = torch.zeros(size, size, dtype=torch.float64)
    for i in range(size):
        for offset, weight in zip(range(-half, half + 1), window):
            j = abs(i + offset)  # reflect at 0 ...
            j = 2 * (size - 1) - j if j >= size else j  # ... and at size - 1
            matrix[i, j] += weight
    return matrix.float()


def ssim_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """1 - SSIM (data range 1), so identical images give 0: torchmetrics' Gaussian SSIM, computed separably.

    The 2-D window is the outer product of two 1-D ones, so each local mean is M_h x M_w^T: two small matmuls per
    map instead of a depthwise 11x11 convolution (about a tenth of a GAN training step on the CPU). The statistics
    are taken in float32 even under autocast: a variance E[x^2] - E[x]^2 in bfloat16 is mostly rounding error.
    """
    height, width = prediction.shape[-2:]
    sigma = _ssim_sigma(height, width)
    with torch.autocast(prediction.device.type, enabled=False):
        x, y = prediction.float(), target.float()
        rows = _gaussian_blur_matrix(height, sigma).to(x.device)
        columns = _gaussian_blur_matrix(width, sigma).to(x.device)
        stats = torch.stack([x, y, x * x, y * y, x * y])  # (5, B, C, H, W)
        mu_x, mu_y, xx, yy, xy = rows @ stats @ columns.T  # local Gaussian means
        c1, c2 = 0.01**2, 0.03**2  # (k data_range)^2 with torchmetrics' k1 = 0.01, k2 = 0.03 and data range 1
        var_x = (xx - mu_x.square()).clamp_min(0)
        var_y = (yy - mu_y.square()).clamp_min(0)
        covariance = xy - mu_x * mu_y
        ssim = ((2 * mu_x * mu_y + c1) * (2 * covariance + c2)) / (
            (mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2)
        )
        return 1.0 - ssim.mean()


def adversarial_loss(outputs: Tensor, real: bool, kind: AdversarialLoss = "bce") -> Tensor:
    """GAN loss of discriminator outputs against the label real (1) or fake (0)."""
    target = torch.full_like(outputs, 1.0 if real else 0.0)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(outputs, target)
    if kind == "lsgan":
        return (outputs - target).square().mean()
    raise ValueError(f"adversarial_loss: unknown kind {kind!r}; known: {', '.join(ADVERSARIAL_KINDS)}")
