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
# Conjugate gradients stop once every system's residual norm is this fraction of its start: the fill
# is then the converged one to well under a grey level (see the tests). A fixed 40 iterations left
# CIFAR-size holes 0.08 dB short of scikit-image's solution, which every network starting from the
# fill then had to make up before it could beat that baseline.
BIHARMONIC_TOLERANCE = 3e-4
BIHARMONIC_MAX_ITERATIONS = 500  # a bound on the work for very wide holes
_CHECK_EVERY = 10  # eager iterations between convergence checks (each one waits for the device)


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


def _conjugate_gradient_step(
    u: torch.Tensor, r: torch.Tensor, p: torch.Tensor, rr: torch.Tensor, solved: torch.Tensor, lhs: typing.Callable
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step for the systems whose residual is still above `solved`; solved systems keep their state.

    Freezing per system (instead of stopping the batch) makes the result independent of when the
    loop stops, so the eager loop, which checks only now and then, and an exported graph's loop agree.
    """
    active = rr > solved
    ap = lhs(p)
    alpha = _safe_divide(rr, _per_system_dot(p, ap)).where(active, 0)
    u, r = u + alpha * p, r - alpha * ap
    rr_next = _per_system_dot(r, r)
    p = (r + _safe_divide(rr_next, rr) * p).where(active, p)
    return u, r, p, rr_next


def biharmonic_fill(
    images: torch.Tensor,
    masks: torch.Tensor,
    tolerance: float = BIHARMONIC_TOLERANCE,
    max_iterations: int = BIHARMONIC_MAX_ITERATIONS,
) -> torch.Tensor:
    """Holes filled by biharmonic interpolation: the system scikit-image's `inpaint_biharmonic` solves.

    Solves Δ²u = 0 on the hole pixels (Neumann borders) by batched conjugate gradients from the
    push-pull fill, until every system's residual norm is `tolerance` times its initial one (or
    after `max_iterations`). Shifted adds on the whole batch instead of one sparse solve per image.
    Under `torch.export` the stop is a `torch.while_loop`, which ONNX carries as a Loop.
    """
    degree = _neighbour_sum(torch.ones_like(masks[:1]))  # (1, 1, H, W): neighbours inside the image

    def lhs(x: torch.Tensor) -> torch.Tensor:
        return masks * _bilaplacian(x, degree)

    u = smooth_fill(images, masks)
    r = -lhs(u)  # the residual lives on the hole: known pixels never move
    p, rr = r.clone(), _per_system_dot(r, r)  # a copy: a while_loop's carried tensors must not alias
    solved = rr * tolerance**2
    if torch.compiler.is_exporting():
        step = torch.zeros((), dtype=torch.int64)

        def unsolved(step, u, r, p, rr):
            return (step < max_iterations) & (rr > solved).any()

        def iterate(step, u, r, p, rr):
            return step + 1, *_conjugate_gradient_step(u, r, p, rr, solved, lhs)

        _, u, *_ = torch.while_loop(unsolved, iterate, (step, u, r, p, rr))
    elif torch.jit.is_tracing():  # a traced graph keeps every iteration: the frozen systems make the extra ones no-ops
        for _ in range(max_iterations):
            u, r, p, rr = _conjugate_gradient_step(u, r, p, rr, solved, lhs)
    else:
        u = _solve_dropping_solved(u, r, p, rr, solved, masks, degree, max_iterations)
    return _clip_to_known_range(u, images, masks)


def _solve_dropping_solved(
    u: torch.Tensor,
    r: torch.Tensor,
    p: torch.Tensor,
    rr: torch.Tensor,
    solved: torch.Tensor,
    masks: torch.Tensor,
    degree: torch.Tensor,
    max_iterations: int,
) -> torch.Tensor:
    """Eager conjugate gradients on the systems (B, C, H, W) that every `_CHECK_EVERY` steps drop the solved ones.

    The solved systems are frozen anyway, so dropping them changes nothing but the work: it follows the
    systems still unsolved instead of the batch's slowest one.
    """
    shape = u.shape
    u, r, p, rr, solved = (t.flatten(0, 1).unsqueeze(1) for t in (u, r, p, rr, solved))  # (B*C, 1, ...) systems
    hole = masks.expand(shape).flatten(0, 1).unsqueeze(1)
    everything, rows = u, torch.arange(len(u), device=u.device)
    for step in range(max_iterations):
        if step % _CHECK_EVERY == 0:
            active = (rr > solved).flatten()
            if not bool(active.any()):
                break
            if not bool(active.all()):
                everything = everything.index_copy(0, rows, u)
                keep = active.nonzero().squeeze(1)
                rows, u, r, p, rr, solved, hole = (t[keep] for t in (rows, u, r, p, rr, solved, hole))
        u, r, p, rr = _conjugate_gradient_step(u, r, p, rr, solved, lambda x, hole=hole: hole * _bilaplacian(x, degree))
    return everything.index_copy(0, rows, u).view(shape)


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
