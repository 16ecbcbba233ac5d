"""Raster-order sampling of the hole pixels for the PixelCNN inpainter: a cropped sampler and a naive reference.

Fast path: the conditioning features depend only on the known pixels and the mask, so they are
computed once per batch. For each position where some image has a hole, the causal trunk runs
only on the images with a hole there and only on the window the output pixel can read
(`model.reach`: rows above and columns either side, cut at the current row), and the head only at
that pixel. Every kernel is a causal half padded only on top, left and right, so the window gives
the full-image values (up to floating-point summation order).

Naive path: one full-image forward pass (conditioning, trunk and head) per position and channel.

Random draws: at every (position, channel) where some image has a hole, one uniform per batch
image, from `generator` or else torch's global RNG; both paths draw identically, so with the same
seed they give the same completion. Sampling is by inverse CDF, greedy is the arg-max.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from pixelheal.models.pixelcnn_layers import Reach, gate

if TYPE_CHECKING:
    from pixelheal.models.pixelcnn import PixelCNNInpainter


@dataclass(frozen=True)
class _Drawer:
    """Turns logits into discrete values: greedy, or sampled at `temperature` from the RNG."""

    greedy: bool
    temperature: float
    generator: torch.Generator | None
    batch: int
    bernoulli: bool

    def __call__(self, logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Values (b,) for `logits` (b, levels) of the images `rows` of the batch."""
        if self.greedy:
            return (logits[:, 0] > 0).long() if self.bernoulli else logits.argmax(1)
        # One uniform per batch image, holes or not, so both paths consume the RNG alike.
        u = torch.rand(self.batch, generator=self.generator, device=logits.device, dtype=logits.dtype)[rows]
        if self.bernoulli:
            return (u < torch.sigmoid(logits[:, 0] / self.temperature)).long()
        cdf = torch.softmax(logits / self.temperature, dim=1).cumsum(1)  # (b, levels)
        return (cdf < u[:, None] * cdf[:, -1:]).sum(1).clamp_max(logits.shape[1] - 1)


def hole_positions(masks: torch.Tensor) -> list[tuple[int, int, torch.Tensor]]:
    """(i, j, batch rows with a hole at (i, j)) in raster order, for positions with any hole."""
    hole = masks[:, 0].bool()  # (B, H, W)
    by_position = hole.permute(1, 2, 0)  # (H, W, B)
    return [(i, j, by_position[i, j].nonzero().squeeze(1)) for i, j in hole.any(0).nonzero().tolist()]


def window(model: PixelCNNInpainter, i: int, j: int, width: int) -> tuple[int, int, int]:
    """(top, left, right) of the crop, rows top..i and columns left..right-1, that pixel (i, j) reads."""
    reach = model.reach
    return max(0, i - reach.up), max(0, j - reach.left), min(width, j + reach.right + 1)


def _remaining(reaches: list[Reach]) -> list[Reach]:
    """For each layer, the reach of all the layers after it."""
    out, total = [], Reach()
    for reach in reversed(reaches):
        out.append(total)
        total = total + reach
    return out[::-1]


def _shrink(t: torch.Tensor, col: int, reach: Reach) -> tuple[torch.Tensor, int]:
    """Crop `t` (b, c, h, w) to what `reach` reads from its last row, column `col`; also returns the new col."""
    left = max(0, col - reach.left)
    return t[:, :, -(reach.up + 1):, left : col + reach.right + 1], col - left


def _plain_features(model: PixelCNNInpainter, x: torch.Tensor, cond: torch.Tensor, col: int) -> torch.Tensor:
    """Trunk features (b, hidden, 1, 1) at the last row, column `col` of the window `x` (b, C, h, w)."""
    h = model.first(x) + model.first_cond(cond)  # (b, hidden, h, w)
    for layer, rest in zip(model.layers, _remaining([layer.reach for layer in model.layers])):
        # Each layer reads one pixel less far than the whole remaining stack: shrink before it.
        rest = rest + layer.reach
        (h, _), (cond, col) = _shrink(h, col, rest), _shrink(cond, col, rest)
        h = layer(h, cond)
    return h[:, :, -1:, col : col + 1]


def _gated_features(model: PixelCNNInpainter, x: torch.Tensor, cond: torch.Tensor, col: int) -> torch.Tensor:
    """Gated trunk features (b, hidden, 1, 1) at the last row, column `col` of the window `x`."""
    # The output pixel reads the horizontal stack on its own row only, the vertical one on the rows above.
    above, here = x[:, :, :-1], x[:, :, -1:]  # (b, C, h-1, w), (b, C, 1, w)
    cond_above, cond_here = cond[:, :, :-1], cond[:, :, -1:]
    for layer, rest in zip(model.layers, _remaining([layer.reach for layer in model.layers])):
        if above.shape[2]:
            v_pre = layer.vertical_pre(above, cond_above)  # (b, 2*hidden, h-1, w)
            here = layer.horizontal_out(here, v_pre[:, :, -1:], cond_here)  # (b, hidden, 1, w)
            above = gate(v_pre)
        else:  # the first image row: the shifted vertical stack is all zeros there
            zeros = torch.zeros_like(cond_here[:, :1]).expand(-1, layer.v_to_h.in_channels, -1, -1)
            here = layer.horizontal_out(here, zeros, cond_here)
        (above, _), (cond_above, _) = _shrink(above, col, rest), _shrink(cond_above, col, rest)
        (here, _), (cond_here, col) = _shrink(here, col, rest), _shrink(cond_here, col, rest)
    return here[:, :, :, col : col + 1]


def _pixel_logits(model: PixelCNNInpainter, x: torch.Tensor, cond: torch.Tensor, col: int) -> torch.Tensor:
    """Logits (b, C, levels) at the last row, column `col`, of the window `x` (b, C, h, w)."""
    features = (_gated_features if model.gated else _plain_features)(model, x, cond, col)
    return model.pixel_logits(features)[..., 0, 0]


def _sample_fast(model: PixelCNNInpainter, images: torch.Tensor, masks: torch.Tensor, draw: _Drawer) -> torch.Tensor:
    """Discrete values (B, C, H, W) with the holes sampled through cropped forward passes."""
    values = model.quantise(images) * (masks == 0)  # hole values zeroed: nothing of them can leak
    x = model.ar_input(values, images.dtype)  # (B, C, H, W)
    cond = model.condition(images, masks)  # (B, hidden, H, W), once per batch
    for i, j, rows in hole_positions(masks):
        top, left, right = window(model, i, j, images.shape[-1])
        x_win = x[:, :, top : i + 1, left:right].index_select(0, rows)  # (b, C, h, w), a copy
        cond_win = cond[:, :, top : i + 1, left:right].index_select(0, rows)  # (b, hidden, h, w)
        for c in range(model.channels):
            v = draw(_pixel_logits(model, x_win, cond_win, j - left)[:, c], rows)  # (b,)
            values[rows, c, i, j] = v
            x_win[:, c, -1, j - left] = model.ar_input(v, x.dtype)  # the next channel sees it
            x[rows, c, i, j] = x_win[:, c, -1, j - left]
    return values


def _sample_naive(model: PixelCNNInpainter, images: torch.Tensor, masks: torch.Tensor, draw: _Drawer) -> torch.Tensor:
    """Discrete values (B, C, H, W), one full-image forward pass per position and channel."""
    hole = masks.bool().expand_as(images)  # (B, C, H, W)
    values = model.quantise(images) * (masks == 0)
    height, width = images.shape[-2:]
    for i in range(height):
        for j in range(width):
            rows = hole[:, 0, i, j].nonzero().squeeze(1)
            for c in range(model.channels):
                canvas = torch.where(hole, model.to_image(values, images.dtype), images)
                logits = model(canvas, masks)  # (B, C, levels, H, W) or (B, C, H, W)
                logits = logits[:, c, i, j, None] if model.bernoulli else logits[:, c, :, i, j]  # (B, levels)
                if len(rows):
                    values[rows, c, i, j] = draw(logits[rows], rows)
    return values


def sample_holes(model: PixelCNNInpainter, images: torch.Tensor, masks: torch.Tensor, *, greedy: bool,
                 temperature: float, generator: torch.Generator | None = None, naive: bool = False) -> torch.Tensor:
    """Composited completion (B, C, H, W) in [0, 1]; known pixels are exactly those of `images`."""
    draw = _Drawer(greedy, temperature, generator, len(images), model.bernoulli)
    values = (_sample_naive if naive else _sample_fast)(model, images, masks, draw)
    return torch.where(masks.bool().expand_as(images), model.to_image(values, images.dtype), images)


@torch.no_grad()
def cropped_hole_bpd(model: PixelCNNInpainter, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per-image hole NLL (B,) in bits/sub-pixel via the sampler's cropped passes, teacher-forced (= test_metrics)."""
    values = model.quantise(images)
    x = model.ar_input(values, images.dtype)  # (B, C, H, W)
    cond = model.condition(images, masks)
    bits = torch.zeros(len(images), dtype=images.dtype, device=images.device)
    for i, j, rows in hole_positions(masks):
        top, left, right = window(model, i, j, images.shape[-1])
        x_win = x[:, :, top : i + 1, left:right].index_select(0, rows)
        cond_win = cond[:, :, top : i + 1, left:right].index_select(0, rows)
        logits = _pixel_logits(model, x_win, cond_win, j - left)  # (b, C, levels)
        bits.index_add_(0, rows, model.nll_bits(logits, values[rows, :, i, j]).sum(1))
    dims = masks.flatten(1).sum(1) * model.channels
    return torch.where(dims > 0, bits / dims.clamp_min(1), torch.full_like(bits, math.nan))
