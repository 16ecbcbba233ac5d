"""PixelCNN and Gated PixelCNN inpainters (`pixelcnn`): an autoregressive model of the hole pixels.

The autoregressive (AR) input is the quantised image, read through a causal trunk of masked
convolutions (`pixelcnn_trunks`: mask A first, mask B after, colour order R → G → B inside a pixel).
An unmasked conditioning stack over (masked image, mask) is added into every layer, so the model
learns p(hole | known pixels). Likelihood, sampling and the naive reference sampler come from
`AutoregressiveInpainter`; select the best epoch on `val_nll_bpd` (lower is better).

Unconditional mode (`conditional: false`, the original MNIST PixelCNN): no conditioning stack, and
the training and validation likelihood is that of every pixel (the mask is ignored there), so the
model learns the density of whole images and `generate` draws them from a blank canvas. It still
inpaints: the sampler fixes the known pixels and draws each hole pixel from p(pixel | earlier
pixels), so a hole is conditioned on the known pixels before it in raster order (not those after).
Its `test_nll_bpd` is the NLL of the true hole pixels under that same raster-order factorisation.

Fast sampler (`fill_raster`): the conditioning features depend only on the known pixels and the
mask, so they are computed once per batch. For each position where some image has a hole, the trunk
runs only on the images with a hole there and only on the window the output pixel can read
(`trunk.reach`, cut at the current row), and the head only at that pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from pixelheal.config import require
from pixelheal.models.autoregressive import LEVELS, AutoregressiveInpainter, Chooser, Sampling, hole_positions
from pixelheal.models.fills import masked_input
from pixelheal.models.pixelcnn_layers import ConditioningStack, OutputHead, channel_groups
from pixelheal.models.pixelcnn_trunks import GatedTrunk, PlainTrunk


@dataclass(frozen=True)
class PixelCNNConfig:
    """Hyper-parameters of `pixelcnn`."""

    in_channels: int = 3
    hidden: int = 64  # trunk width; a plain trunk's 3x3 convolutions use hidden // 2
    n_blocks: int = 4
    gated: bool = False  # True: Gated PixelCNN (vertical + horizontal stacks, no blind spot)
    output: Literal["softmax", "bernoulli"] = "softmax"  # 256-way per sub-pixel | binarised images (BCE)
    sampling: Sampling = "sample"
    temperature: float = 1.0
    cond_layers: int = 4  # unmasked convolutions over the masked image + mask (conditional only)
    conditional: bool = True  # False: the unconditional density of every pixel (the original MNIST PixelCNN)

    def __post_init__(self) -> None:
        require(self.in_channels >= 1, "in_channels", f"must be at least 1, got {self.in_channels}")
        # the residual blocks' inner width hidden // 2 needs a channel per colour group
        require(
            self.hidden >= 2 * self.in_channels,
            "hidden",
            f"must be at least 2 * in_channels = {2 * self.in_channels}, got {self.hidden}",
        )
        require(self.n_blocks >= 0, "n_blocks", f"must be at least 0, got {self.n_blocks}")
        require(self.temperature > 0, "temperature", f"must be positive, got {self.temperature}")
        require(self.cond_layers >= 1, "cond_layers", f"must be at least 1, got {self.cond_layers}")


class PixelCNNInpainter(AutoregressiveInpainter):
    """PixelCNN (residual blocks) or Gated PixelCNN (`gated=True`) conditioned on the known pixels."""

    def __init__(self, config: PixelCNNConfig) -> None:
        super().__init__(
            config.in_channels,
            sampling=config.sampling,
            temperature=config.temperature,
            bernoulli=config.output == "bernoulli",
        )
        self.config = config
        self.levels = 1 if self.bernoulli else LEVELS  # logits per sub-pixel
        channels, hidden = config.in_channels, config.hidden
        # Construction order (conditioning, trunk, head) fixes the seeded initial weights.
        self.conditioning = ConditioningStack(channels + 1, hidden, config.cond_layers) if config.conditional else None
        trunk = GatedTrunk if config.gated else PlainTrunk
        self.trunk = trunk(channels, hidden, config.n_blocks, conditional=config.conditional)
        self.head = OutputHead(channel_groups(hidden, channels), channel_groups(channels * self.levels, channels))

    def ar_input(self, values: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Discrete values → the network's AR input in [-1, 1]."""
        return values.to(dtype) * (2.0 / self.top_value) - 1

    @property
    def unconditional(self) -> bool:
        return not self.config.conditional

    def condition(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor | None:
        """Conditioning features of the known pixels and the mask (they never see hole values); None if unconditional."""
        if self.conditioning is None:
            return None
        return self.conditioning(masked_input(images, masks))  # (B, hidden, H, W)

    def scored(self, masks: torch.Tensor) -> torch.Tensor:
        """The pixels the training / validation likelihood counts: the hole, or every pixel if unconditional."""
        return masks if self.config.conditional else torch.ones_like(masks)

    def networks(self) -> tuple[str, ...]:
        return ("conditioning", "trunk", "head")  # conditioning is None when unconditional

    def losses(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean cross-entropy (BCE for `bernoulli`) per scored sub-pixel: "loss" in nats, "nll_bpd" in bits."""
        return super().losses(images, self.scored(masks))

    @torch.no_grad()
    def validation_step(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
        """The likelihood of the scored sub-pixels (the hole, or every pixel if unconditional)."""
        return super().validation_step(images, self.scored(masks))

    def pixel_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Head over trunk features (B, hidden, h, w) → logits (B, C, levels, h, w)."""
        out = self.head(features)  # (B, C*levels, h, w), channel-major blocks
        return out.unflatten(1, (self.channels, self.levels))

    def logits(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, C, levels, H, W): the hole values before each sub-pixel come from `images`."""
        x = self.ar_input(self.quantise(images), images.dtype)  # (B, C, H, W) in [-1, 1]
        return self.pixel_logits(self.trunk(x, self.condition(images, masks)))

    def window_logits(self, x: torch.Tensor, cond: torch.Tensor | None, col: int) -> torch.Tensor:
        """Logits (b, C, levels) at the last row, column `col`, of a window of AR input `x` (b, C, h, w)."""
        return self.pixel_logits(self.trunk.window_features(x, cond, col))[..., 0, 0]

    def window(self, i: int, j: int, width: int) -> tuple[int, int, int]:
        """(top, left, right) of the crop, rows top..i and columns left..right-1, that pixel (i, j) reads."""
        reach = self.trunk.reach
        return max(0, i - reach.up), max(0, j - reach.left), min(width, j + reach.right + 1)

    def fill_raster(
        self, images: torch.Tensor, masks: torch.Tensor, values: torch.Tensor, choose: Chooser
    ) -> torch.Tensor:
        """`values` (B, C, H, W) with the hole sub-pixels set by `choose`, through cropped forward passes."""
        values = values.clone()
        x = self.ar_input(values, images.dtype)  # (B, C, H, W)
        cond = self.condition(images, masks)  # (B, hidden, H, W), once per batch; None if unconditional
        for i, j, rows in hole_positions(masks):
            top, left, right = self.window(i, j, images.shape[-1])
            x_win = x[:, :, top : i + 1, left:right].index_select(0, rows)  # (b, C, h, w), a copy
            cond_win = None if cond is None else cond[:, :, top : i + 1, left:right].index_select(0, rows)
            for c in range(self.channels):
                logits = self.window_logits(x_win, cond_win, j - left)[:, c]  # (b, levels)
                v = choose(logits, rows, values[rows, c, i, j])  # (b,)
                values[rows, c, i, j] = v
                x_win[:, c, -1, j - left] = self.ar_input(v, x.dtype)  # the next channel sees it
                x[rows, c, i, j] = x_win[:, c, -1, j - left]
        return values
