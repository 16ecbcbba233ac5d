"""The causal trunks of the PixelCNN inpainter: residual blocks (`PlainTrunk`) or gated stacks (`GatedTrunk`).

Both have one interface, so nothing outside them tells them apart:
  * `forward(x, cond)`: features (B, hidden, H, W) of the AR input x (B, C, H, W) plus conditioning
    (B, hidden, H, W), or `cond=None` for a trunk built with `conditional=False`;
  * `window_features(x, cond, col)`: the features at one pixel, the last row and column `col` of a
    window cropped around it (rows `reach.up` above, columns `reach.left` / `reach.right` either
    side, cut at the pixel's row), equal to the full-image features there up to summation order;
  * `reach`: how far the features at a pixel read the AR input.
Every kernel is a causal half padded only on top, left and right (see `pixelcnn_layers`), which is
why a window cut at the current row gives the full-image values.
"""

from __future__ import annotations

import torch
from torch import nn

from pixelheal.models.pixelcnn_layers import (
    GatedLayer,
    MaskedConv2d,
    Reach,
    ResidualBlock,
    channel_groups,
    cond_conv,
    gate,
    plus_cond,
)

FIRST_KERNEL, BLOCK_KERNEL = 7, 3


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
    return t[:, :, -(reach.up + 1) :, left : col + reach.right + 1], col - left


def _shrink_cond(cond: torch.Tensor | None, col: int, reach: Reach) -> torch.Tensor | None:
    """`_shrink` of conditioning features; None (an unconditional trunk) stays None."""
    return None if cond is None else _shrink(cond, col, reach)[0]


def _rows(cond: torch.Tensor | None, rows: slice) -> torch.Tensor | None:
    """The rows `rows` of conditioning features; None stays None."""
    return None if cond is None else cond[:, :, rows]


class PlainTrunk(nn.Module):
    """PixelCNN: a mask-A 7x7 convolution, then residual blocks, conditioning (if any) added into each."""

    def __init__(self, channels: int, hidden: int, n_blocks: int, conditional: bool = True) -> None:
        super().__init__()
        groups, cond_channels = channel_groups(hidden, channels), hidden if conditional else None
        self.first = MaskedConv2d(channel_groups(channels, channels), groups, FIRST_KERNEL, "A")
        self.first_cond = cond_conv(cond_channels, hidden)
        inner = channel_groups(hidden // 2, channels)
        self.layers = nn.ModuleList(ResidualBlock(groups, inner, cond_channels) for _ in range(n_blocks))
        self.reach = sum((layer.reach for layer in self.layers), self.first.reach)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = plus_cond(self.first(x), self.first_cond, cond)  # (B, hidden, H, W)
        for layer in self.layers:
            h = layer(h, cond)
        return h

    def window_features(self, x: torch.Tensor, cond: torch.Tensor | None, col: int) -> torch.Tensor:
        """Features (b, hidden, 1, 1) at the last row, column `col`, of the window `x` (b, C, h, w)."""
        h = plus_cond(self.first(x), self.first_cond, cond)  # (b, hidden, h, w)
        for layer, rest in zip(self.layers, _remaining([layer.reach for layer in self.layers])):
            # Each layer reads one pixel less far than the whole remaining stack: shrink before it.
            rest = rest + layer.reach
            cond = _shrink_cond(cond, col, rest)
            h, col = _shrink(h, col, rest)
            h = layer(h, cond)
        return h[:, :, -1:, col : col + 1]


class GatedTrunk(nn.Module):
    """Gated PixelCNN: vertical and horizontal stacks (no blind spot), conditioning (if any) added into each layer."""

    def __init__(self, channels: int, hidden: int, n_blocks: int, conditional: bool = True) -> None:
        super().__init__()
        in_groups, groups = channel_groups(channels, channels), channel_groups(hidden, channels)
        cond_channels = hidden if conditional else None
        self.layers = nn.ModuleList(
            [GatedLayer(in_groups, groups, FIRST_KERNEL, cond_channels, first=True)]
            + [GatedLayer(groups, groups, BLOCK_KERNEL, cond_channels, first=False) for _ in range(n_blocks)]
        )
        # + the shift of the vertical stack into the horizontal one: one row up
        self.reach = sum((layer.reach for layer in self.layers), Reach(up=1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        v, h = x, x
        for layer in self.layers:
            v, h = layer(v, h, cond)
        return h

    def window_features(self, x: torch.Tensor, cond: torch.Tensor | None, col: int) -> torch.Tensor:
        """Features (b, hidden, 1, 1) at the last row, column `col`, of the window `x` (b, C, h, w)."""
        # The output pixel reads the horizontal stack on its own row only, the vertical one on the rows above.
        above, here = x[:, :, :-1], x[:, :, -1:]  # (b, C, h-1, w), (b, C, 1, w)
        cond_above, cond_here = _rows(cond, slice(None, -1)), _rows(cond, slice(-1, None))
        for layer, rest in zip(self.layers, _remaining([layer.reach for layer in self.layers])):
            if above.shape[2]:
                v_pre = layer.vertical_pre(above, cond_above)  # (b, 2*hidden, h-1, w)
                here = layer.horizontal_out(here, v_pre[:, :, -1:], cond_here)  # (b, hidden, 1, w)
                above = gate(v_pre)
            else:  # the first image row: the shifted vertical stack is all zeros there
                zeros = torch.zeros_like(here[:, :1]).expand(-1, layer.gate_channels, -1, -1)
                here = layer.horizontal_out(here, zeros, cond_here)
            cond_above, cond_here = _shrink_cond(cond_above, col, rest), _shrink_cond(cond_here, col, rest)
            (above, _), (here, col) = _shrink(above, col, rest), _shrink(here, col, rest)
        return here[:, :, :, col : col + 1]
