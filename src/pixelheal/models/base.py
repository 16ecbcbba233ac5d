"""The interface every inpainting architecture implements, so one training loop serves them all.

Contract: images are float tensors in [0, 1] of shape (B, C, H, W); masks are float tensors of
shape (B, 1, H, W) with 1 = hole (missing), 0 = known. Architectures that want another range
(e.g. [-1, 1]) convert inside their own methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn


def composite(images: torch.Tensor, masks: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
    """Keep the known pixels of `images` and take the hole pixels from `predictions`."""
    return masks * predictions + (1 - masks) * images


HOLE_FILLS = ("zero", "smooth", "biharmonic")
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
    return torch.where(denominator > 0, numerator / denominator, torch.zeros_like(numerator))


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


def fill_holes(images: torch.Tensor, masks: torch.Tensor, fill: str = "zero") -> torch.Tensor:
    """The image with its holes zeroed or interpolated (`fill`: one of HOLE_FILLS)."""
    if fill == "zero":
        return images * (1 - masks)
    interpolate = {"smooth": smooth_fill, "biharmonic": biharmonic_fill}.get(fill)
    if interpolate is None:
        raise ValueError(f"hole_fill: expected one of {list(HOLE_FILLS)}, got {fill!r}")
    # float32 even under half precision: the solver's dot products over- and underflow in float16.
    return interpolate(images.float(), masks.float()).to(images.dtype)


def fill_logit(filled: torch.Tensor) -> torch.Tensor:
    """The logit of an interpolated fill: a network adds its correction to it before the sigmoid."""
    return torch.logit(filled, eps=1e-3)


def masked_input(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The image with its holes zeroed, plus the mask as an extra channel."""
    return torch.cat([fill_holes(images, masks), masks], dim=1)  # (B, C+1, H, W)


class InpaintingModel(nn.Module):
    """Base class: a network plus how it is trained (`losses`, `training_step`) and how it inpaints.

    Subclasses implement `forward(images, masks)` and `losses`. For regression architectures
    `forward` is the whole-image prediction in [0, 1], which the default `inpaint` composites;
    autoregressive ones return their raw output (logits) and override `inpaint` with sampling.
    Architectures with several networks or optimisers (GANs) override the training step.
    """

    def losses(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms of one batch; the key "loss" holds the total that is minimised."""
        raise NotImplementedError

    def make_optimizers(self, build: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]) -> dict[str, torch.optim.Optimizer]:
        """Optimisers by name, each made by `build`; architectures with several networks override."""
        return {"model": build(self.parameters())}

    def training_step(self, images: torch.Tensor, masks: torch.Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        """One optimisation step on a batch; returns the loss terms as floats."""
        (optimizer,) = optimizers.values()
        optimizer.zero_grad(set_to_none=True)
        terms = self.losses(images, masks)
        terms["loss"].backward()
        optimizer.step()
        return {name: value.item() for name, value in terms.items()}

    @torch.no_grad()
    def validation_step(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
        """Loss terms plus the PSNR of the composited completion, averaged over the batch."""
        terms = {name: value.item() for name, value in self.losses(images, masks).items()}
        mse = (self.inpaint(images, masks) - images).square().flatten(1).mean(1)
        terms["psnr"] = (-10 * torch.log10(mse.clamp_min(1e-10))).mean().item()
        return terms

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Composited completion in [0, 1]: known pixels are returned unchanged."""
        return composite(images, masks, self(images, masks).clamp(0, 1))

    @torch.no_grad()
    def inpaint_samples(self, images: torch.Tensor, masks: torch.Tensor, n_samples: int) -> list[torch.Tensor]:
        """Several completions per image; deterministic architectures return one."""
        return [self.inpaint(images, masks)]

    @torch.no_grad()
    def test_metrics(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Architecture-specific per-image test metrics (e.g. "nll_bpd"), each of shape (B,)."""
        return {}
