"""Hole fills: what a network sees in the hole, and for the regression architectures its starting point.

"zero" blanks the hole (in any value range); "smooth" (a push-pull pyramid) and "biharmonic"
interpolate it from the known pixels. contract: images (B, C, H, W) in [0, 1], masks (B, 1, H, W)
with 1 = hole; known pixels are returned unchanged.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import typing
from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy.linalg import get_lapack_funcs
from torch.autograd.function import once_differentiable

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
# Up to this many pixels an eager CPU fill factorises each image's system (a band Cholesky that its channels share)
# instead of iterating, and the solution is exact: 64 CIFAR images with 5-50 % holes took 8.6 ms here, against 17 ms
# with dense factorisations and 79 ms by conjugate gradients. The band is cut from the operator's dense matrix,
# (H W)^2 entries, so larger images iterate.
DIRECT_MAX_PIXELS = 32 * 32
_ITERATIVE_ONLY = contextvars.ContextVar("iterative_only", default=False)


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


@contextlib.contextmanager
def conjugate_gradients_only() -> Iterator[None]:
    """Within the block every biharmonic fill iterates, as an exported graph does (ONNX has no Cholesky)."""
    token = _ITERATIVE_ONLY.set(True)
    try:
        yield
    finally:
        _ITERATIVE_ONLY.reset(token)


def _solves_directly(images: torch.Tensor) -> bool:
    """Whether this fill factorises its systems: eager, on the CPU, images of up to DIRECT_MAX_PIXELS."""
    return not (
        _ITERATIVE_ONLY.get()
        or torch.compiler.is_exporting()
        or torch.jit.is_tracing()
        or images.device.type != "cpu"
        or images.shape[-2] * images.shape[-1] > DIRECT_MAX_PIXELS
    )


@functools.lru_cache(maxsize=4)
def _bilaplacian_band(height: int, width: int, dtype: np.dtype) -> np.ndarray:
    """The grid bilaplacian (Neumann borders) by sub-diagonal: band[d, p] = A[p + d, p] for d <= 2 W, then a zero row.

    The 13-point stencil couples a pixel only to those within two rows: within 2 W raster positions.
    """
    pixels, reach = height * width, 2 * width
    basis = torch.eye(pixels, dtype=torch.float64).view(pixels, 1, height, width)  # one image per pixel's indicator
    degree = _neighbour_sum(torch.ones_like(basis[:1]))
    matrix = _bilaplacian(basis, degree).view(pixels, pixels).numpy()
    band = np.zeros((reach + 2, pixels), dtype)
    for d in range(min(reach, pixels - 1) + 1):
        band[d, : pixels - d] = np.diagonal(matrix, -d)
    return band


class _HoleFactor(typing.NamedTuple):
    """One image's hole: its pixels in raster order and the Cholesky factor of its block of the bilaplacian."""

    index: np.ndarray
    factor: np.ndarray  # lower factor in LAPACK band storage: factor[k, j] = L[j + k, j]


def _factorise_holes(masks: torch.Tensor, dtype: np.dtype) -> list[_HoleFactor | None]:
    """Each image's hole block factorised as a band matrix; None for an image with no hole or no known pixel.

    In raster order the hole block is a band of at most 2 W sub-diagonals (about 40 on CIFAR's holes): its
    factorisation takes n k^2 steps instead of a dense one's n^3 / 3, and a batch of CIFAR fills half the
    time. The block is positive definite once one pixel is known.
    """
    height, width = masks.shape[-2:]
    pixels, reach = height * width, 2 * width
    operator = _bilaplacian_band(height, width, dtype)
    band_cholesky = get_lapack_funcs("pbtrf", dtype=dtype)
    factors = []
    for hole in (masks.flatten(1) > 0).numpy():
        index = np.flatnonzero(hole)
        if not 0 < len(index) < pixels:
            factors.append(None)
            continue
        columns = np.arange(len(index))
        bandwidth = int((np.searchsorted(index, index + reach, side="right") - columns).max()) - 1
        beyond = np.append(index, np.full(bandwidth, pixels + reach))  # past the end: out of every pixel's reach
        offsets = np.minimum(beyond[columns + np.arange(bandwidth + 1)[:, None]] - index, reach + 1)
        band = operator[offsets, index]  # band[k, j] = A[j + k, j]; the zero row beyond the reach
        factor, info = band_cholesky(band, lower=1, overwrite_ab=1)
        if info != 0:
            raise RuntimeError(f"the biharmonic system of a {len(index)}-pixel hole is not positive definite")
        factors.append(_HoleFactor(index, factor))
    return factors


def _solve_holes(rhs: torch.Tensor, factors: list[_HoleFactor | None]) -> torch.Tensor:
    """(B, C, H W): each factorised image's hole solved for `rhs`, zero elsewhere."""
    rhs = rhs.detach().numpy()
    band_solve = get_lapack_funcs("pbtrs", dtype=rhs.dtype)
    solution = np.zeros_like(rhs)
    for i, hole in enumerate(factors):
        if hole is not None:
            x, info = band_solve(hole.factor, rhs[i][:, hole.index].T, lower=1)
            solution[i][:, hole.index] = x.T
    return torch.from_numpy(solution)


class _HoleSolve(torch.autograd.Function):
    """x = A^-1 b for each image's factorised hole block A; A is symmetric, so the gradient is A^-1 grad."""

    @staticmethod
    def forward(ctx, rhs: torch.Tensor, factors: list[_HoleFactor | None]) -> torch.Tensor:
        ctx.factors = factors
        return _solve_holes(rhs, factors)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _solve_holes(grad.contiguous(), ctx.factors), None


def _solve_directly(u: torch.Tensor, masks: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
    """u (B, C, H, W) with each image's hole replaced by the exact solution of its system.

    An image with no hole or no known pixel keeps `u`. float64 inputs solve in float64, others in float32.
    """
    shape, dtype = u.shape, torch.float64 if u.dtype == torch.float64 else torch.float32
    rhs = -_bilaplacian((u * (1 - masks)).to(dtype), degree).flatten(2).contiguous()  # minus the known pixels' part
    factors = _factorise_holes(masks, rhs.detach().numpy().dtype)
    solved = torch.tensor([f is not None for f in factors], dtype=torch.bool).view(-1, 1, 1) & (masks.flatten(2) > 0)
    return torch.where(solved, _HoleSolve.apply(rhs, factors).to(u.dtype), u.flatten(2)).view(shape)


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

    Solves Δ²u = 0 on the hole pixels (Neumann borders). Eager CPU fills of small images (see
    DIRECT_MAX_PIXELS) factorise each image's system exactly. Otherwise batched conjugate gradients
    run from the push-pull fill, until every system's residual norm is `tolerance` times its initial
    one (or after `max_iterations`): shifted adds on the whole batch. Under `torch.export` the stop
    is a `torch.while_loop`, which ONNX carries as a Loop.
    """
    degree = _neighbour_sum(torch.ones_like(masks[:1]))  # (1, 1, H, W): neighbours inside the image
    if _solves_directly(images):
        # Every hole with a known pixel is solved; one without keeps this start: mid-grey, as the push-pull fill's.
        start = composite(images, masks, torch.full_like(images, 0.5))
        return _clip_to_known_range(_solve_directly(start, masks, degree), images, masks)
    u = smooth_fill(images, masks)

    def lhs(x: torch.Tensor) -> torch.Tensor:
        return masks * _bilaplacian(x, degree)

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
