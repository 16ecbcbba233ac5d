"""Building blocks of the PixelCNN inpainter: causal masked convolutions, residual and gated layers.

Causality contract: the output at pixel (i, j), colour group g may depend on the autoregressive
input only at pixels before (i, j) in raster order, and at (i, j) itself on colour channels < g
(R → G → B). Every spatial kernel is stored as its causal half (rows up to the centre row) and
padded only on top, left and right, so a window cropped at the current row computes the same values.
Each layer records its `reach` (rows up, columns left, columns right) so the trunks can crop.

Conditioning features are optional: a layer built with `cond_channels=None` has no conditioning
convolutions and takes `cond=None` (the unconditional PixelCNN, a density over every pixel).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Reach:
    """How far a layer (or a stack) looks from an output pixel: rows up, columns left and right."""

    up: int = 0
    left: int = 0
    right: int = 0

    def __add__(self, other: Reach) -> Reach:
        return Reach(self.up + other.up, self.left + other.left, self.right + other.right)


def channel_groups(n_channels: int, n_groups: int) -> torch.Tensor:
    """Colour group of each of `n_channels` channels: contiguous, near-equal blocks (0 = R first)."""
    return torch.arange(n_channels) * n_groups // n_channels  # (n_channels,)


def causal_mask(
    out_groups: torch.Tensor, in_groups: torch.Tensor, height: int, width: int, centre_col: int, mask_type: str
) -> torch.Tensor:
    """Mask (out, in, height, width) of a causal kernel whose centre is in its last row at `centre_col`."""
    # Rows above the centre all visible, the centre row left of the centre too; at the centre,
    # type "A" lets colour group g see input groups < g, type "B" groups <= g.
    mask = torch.ones(len(out_groups), len(in_groups), height, width)
    mask[:, :, -1, centre_col + 1 :] = 0  # later pixels of the current row
    later = out_groups[:, None] > in_groups[None, :] if mask_type == "A" else out_groups[:, None] >= in_groups[None, :]
    mask[:, :, -1, centre_col] = later.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """Convolution over a causal half-kernel with colour-group masking at its centre.

    `size` is the full (odd) kernel size k; the stored kernel is (k//2 + 1, k), or (1, k//2 + 1)
    with `row_only` (the gated PixelCNN's horizontal stack).
    """

    def __init__(
        self, in_groups: torch.Tensor, out_groups: torch.Tensor, size: int, mask_type: str, *, row_only: bool = False
    ) -> None:
        half = size // 2
        height, width = (1, half + 1) if row_only else (half + 1, size)
        super().__init__(len(in_groups), len(out_groups), (height, width))
        self.pad = (half, 0 if row_only else half, height - 1, 0)  # left, right, top, bottom
        self.reach = Reach(height - 1, half, 0 if row_only else half)
        # Not persistent: the mask follows from the hyper-parameters, so checkpoints hold weights only.
        self.register_buffer(
            "mask", causal_mask(out_groups, in_groups, height, width, half, mask_type), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, self.pad), self.weight * self.mask, self.bias)


class VerticalConv2d(nn.Conv2d):
    """Gated PixelCNN vertical stack: rows up to the current one; unmasked, as only the next row reads it."""

    def __init__(self, in_channels: int, out_channels: int, size: int) -> None:
        half = size // 2
        super().__init__(in_channels, out_channels, (half + 1, size))
        self.pad = (half, half, half, 0)
        self.reach = Reach(half, half, half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))


def cond_conv(cond_channels: int | None, out_channels: int) -> nn.Conv2d | None:
    """The 1x1 convolution that adds conditioning features into a layer; None for an unconditional layer."""
    return None if cond_channels is None else nn.Conv2d(cond_channels, out_channels, 1)


def plus_cond(x: torch.Tensor, conv: nn.Conv2d | None, cond: torch.Tensor | None) -> torch.Tensor:
    """`x` plus the conditioning `conv(cond)`, or `x` itself for an unconditional layer."""
    return x if conv is None else x + conv(cond)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Move every row one down (zero first row): row i then only carries rows < i."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]  # (B, C, H, W)


class ResidualBlock(nn.Module):
    """ReLU-1x1-ReLU-masked 3x3-ReLU-1x1 plus skip, conditioning added after the 3x3.

    The 1x1 convs are mask B too: an unmasked 1x1 would mix colour groups and break R → G → B.
    """

    def __init__(self, groups: torch.Tensor, inner_groups: torch.Tensor, cond_channels: int | None) -> None:
        super().__init__()
        self.reduce = MaskedConv2d(groups, inner_groups, 1, "B")
        self.conv = MaskedConv2d(inner_groups, inner_groups, 3, "B")
        self.expand = MaskedConv2d(inner_groups, groups, 1, "B")
        self.cond = cond_conv(cond_channels, len(inner_groups))
        self.reach = self.conv.reach

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = plus_cond(self.conv(F.relu(self.reduce(F.relu(x)))), self.cond, cond)  # (B, inner, H, W)
        return x + self.expand(F.relu(h))


def gate(x: torch.Tensor) -> torch.Tensor:
    """Gated activation tanh(a) * sigmoid(b) over the two channel halves."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """Gated PixelCNN layer (van den Oord et al. 2016): vertical + horizontal stacks, tanh·sigmoid gates.

    The vertical stack feeds the horizontal one from the rows above, which removes the blind
    spot; the first layer (mask A) has no horizontal residual.
    """

    def __init__(
        self, in_groups: torch.Tensor, groups: torch.Tensor, size: int, cond_channels: int | None, first: bool
    ) -> None:
        super().__init__()
        channels, doubled = len(groups), torch.cat([groups, groups])  # gate halves share a group
        self.first, self.gate_channels = first, 2 * channels
        self.vertical = VerticalConv2d(len(in_groups), self.gate_channels, size)
        self.horizontal = MaskedConv2d(in_groups, doubled, size, "A" if first else "B", row_only=True)
        self.v_to_h = nn.Conv2d(self.gate_channels, self.gate_channels, 1)
        self.h_out = MaskedConv2d(groups, groups, 1, "B")
        self.cond_v = cond_conv(cond_channels, self.gate_channels)
        self.cond_h = cond_conv(cond_channels, self.gate_channels)
        self.reach = self.vertical.reach  # the horizontal stack's left reach is no larger

    def forward(self, v: torch.Tensor, h: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        v_pre = self.vertical_pre(v, cond)  # (B, 2C, H, W)
        return gate(v_pre), self.horizontal_out(h, shift_down(v_pre), cond)

    def vertical_pre(self, v: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Vertical stack before its gate (B, 2C, h, w); row r has read rows <= r."""
        return plus_cond(self.vertical(v), self.cond_v, cond)

    def horizontal_out(self, h: torch.Tensor, v_above: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Next horizontal stack from `h`, the (already shifted) vertical pre-activations above, and `cond`."""
        h_pre = plus_cond(self.horizontal(h) + self.v_to_h(v_above), self.cond_h, cond)  # (B, 2C, h, w)
        h_new = self.h_out(gate(h_pre))
        return h_new if self.first else h + h_new


class ConditioningStack(nn.Module):
    """Unmasked dilated 3x3 convs over (masked image, mask): known pixels may be read anywhere.

    Dilations 1, 2, 4, ... widen the view across large holes at little cost.
    """

    def __init__(self, in_channels: int, channels: int, n_layers: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.layers = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=2**k, dilation=2**k) for k in range(1, n_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, channels, H, W)
        for layer in self.layers:
            x = x + layer(F.relu(x))
        return F.relu(x)


class OutputHead(nn.Sequential):
    """ReLU-1x1 mask B-ReLU-1x1 mask B: hidden features → per-channel logits, colour order kept."""

    def __init__(self, groups: torch.Tensor, out_groups: torch.Tensor) -> None:
        super().__init__(
            nn.ReLU(), MaskedConv2d(groups, groups, 1, "B"), nn.ReLU(), MaskedConv2d(groups, out_groups, 1, "B")
        )
