"""Hole fills: what a network sees in the hole, and for the regression architectures its starting point.

"zero" blanks the hole (in any value range); "smooth" (a push-pull pyramid) and "biharmonic"
interpolate it from the known pixels. contract: images (B, C, H, W) in [0, 1], masks (B, 1, H, W)
with 1 = hole; known pixels are returned unchanged.
"""

from __future__ import annotations

import typing
from typing import Literal

import torch
import torch.nn.functional as F

from pixelheal.models.base import composite

HoleFill = Literal["zero", "smooth", "biharmonic"]
HOLE_FILLS: tuple[str, ...] = typing.get_args(HoleFill)
# From the push-pull start this is close to the converged solution on CIFAR-size holes (see the
# tests); holes tens of pixels wide need more to converge.
BIHARMONIC_ITERATIONS = 40


def smooth_fill(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Holes filled by a push-pull pyramid: averages of the known pixels, coarser where holes are wider.

    A cheap, parameter-free interpolation (a few poolings). Known pixels are returned unchanged.
    """
    levels, values, weights = [], images * (1 - masks), 1 - masks
    while min(values.shape[-2:]) > 1:
        levels.append((values, weights))
        values = F.avg_pool2d(values, 2, ceil_mode=True)
        weights = F.avg_pool2d(weights, 2, ceil_mode=True)
    unknown = (weights == 0).to(values.dtype)
    fill = values / weights.clamp_min(1e-6) + unknown * 0.5  # (B, C, 1, 1); mid-grey if no pixel is known
    for values, weights in reversed(levels):
        fill = F.interpolate(fill, size=values.shape[-2:], mode="bilinear", align_corners=False)
        average = values / weights.clamp_min(1e-6)
        fill = weights * average + (1 - weights) * fill  # weights = the known fraction of each cell
    return composite(images, masks, fill)


def _neighbour_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum of the 4-neighbours of every pixel, zero outside the image."""
    p = F.pad(x, (1, 1, 1, 1))
    return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]


def _bilaplacian(x: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
    """The grid Laplacian applied twice; `degree` counts each pixel's neighbours (Neumann borders)."""
    lap = _neighbour_sum(x) - degree * x
    return _neighbour_sum(lap) - degree * lap


def _per_system_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Dot products over the pixels, one per image and channel: (B, C, 1, 1)."""
    return (a * b).sum((2, 3), keepdim=True)


def _safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator, and 0 where the denominator is 0 (a converged or hole-free system)."""
    # Divide by 1 where the denominator is 0: an untaken 0 / 0 branch of `where` still makes its gradient NaN.
    positive = denominator > 0
    return torch.where(positive, numerator / denominator.where(positive, 1), torch.zeros_like(numerator))


def _clip_to_known_range(filled: torch.Tensor, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Clip each image and channel to the range of its known pixels, as scikit-image does."""
    hole = masks.bool().expand_as(images)
    low = images.masked_fill(hole, torch.inf).amin((2, 3), keepdim=True)
    high = images.masked_fill(hole, -torch.inf).amax((2, 3), keepdim=True)
    known = torch.isfinite(low)  # False only for an image without any known pixel: left unclipped
    low, high = low.where(known, -torch.inf), high.where(known, torch.inf)
    return torch.minimum(torch.maximum(filled, low), high)


def biharmonic_fill(images: torch.Tensor, masks: torch.Tensor, iterations: int = BIHARMONIC_ITERATIONS) -> torch.Tensor:
    """Holes filled by biharmonic interpolation: the system scikit-image's `inpaint_biharmonic` solves.

    Solves Δ²u = 0 on the hole pixels (Neumann borders) by batched conjugate gradients from the
    push-pull fill. `iterations` bounds the work, so wide holes get an approximate solution.
    Shifted adds on the whole batch instead of one sparse solve per image.
    """
    degree = _neighbour_sum(torch.ones_like(masks[:1]))  # (1, 1, H, W): neighbours inside the image
    u = smooth_fill(images, masks)
    r = -masks * _bilaplacian(u, degree)  # the residual lives on the hole: known pixels never move
    p, rr = r, _per_system_dot(r, r)
    for _ in range(iterations):
        ap = masks * _bilaplacian(p, degree)
        alpha = _safe_divide(rr, _per_system_dot(p, ap))
        u, r = u + alpha * p, r - alpha * ap
        rr_next = _per_system_dot(r, r)
        p, rr = r + _safe_divide(rr_next, rr) * p, rr_next
    return _clip_to_known_range(u, images, masks)


def fill_holes(images: torch.Tensor, masks: torch.Tensor, fill: HoleFill = "zero") -> torch.Tensor:
    """The image with its holes zeroed or interpolated (`fill`: one of HOLE_FILLS)."""
    if fill == "zero":
        return images * (1 - masks)
    interpolate = {"smooth": smooth_fill, "biharmonic": biharmonic_fill}.get(fill)
    if interpolate is None:
        raise ValueError(f"hole_fill: expected one of {list(HOLE_FILLS)}, got {fill!r}")
    # float32 even under half precision: the solver's dot products over- and underflow in float16.
    return interpolate(images.float(), masks.float()).to(images.dtype)


def fill_logit(filled: torch.Tensor) -> torch.Tensor:
    """The logit of an interpolated fill: the prior a network adds its correction to (see `models.unet.UNet`)."""
    return torch.logit(filled, eps=1e-3)


def masked_input(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The image with its holes zeroed, plus the mask as an extra channel."""
    return torch.cat([fill_holes(images, masks), masks], dim=1)  # (B, C+1, H, W)
