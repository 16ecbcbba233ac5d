"""PixelCNN and Gated PixelCNN inpainters (`pixelcnn`): an autoregressive model of the hole pixels.

The autoregressive (AR) input is the quantised image, read through a causal trunk of masked
convolutions (`pixelcnn_trunks`: mask A first, mask B after, colour order R → G → B inside a pixel).
An unmasked conditioning stack over (hole-filled image, mask) is added into every layer, so the model
learns p(hole | known pixels); `cond_fill` chooses what it sees in the hole: zeros (the default) or the
interpolated fill the U-Nets start from (`smooth`, `biharmonic`), which reads only the known pixels.

Outputs: a 256-way softmax per sub-pixel, a Bernoulli logit for binarised images, or a discretised
logistic mixture (`logistic_mixture`, K = `mixtures` logistics per sub-pixel with linear R → G → B
mean terms, see `logistic_mixture`); the mixture trains on its log-probability at the true values
and samples from its exact 256-way table. With a `cond_fill`, the mixture's means are offsets from the
fill at their pixel and its scales start at MIXTURE_LOG_SCALE, so an untrained model already draws
around the interpolation (colour-coherent completions) and training learns the corrections. Likelihood, sampling and the naive reference sampler come from
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
from pixelheal.models.fills import HoleFill, fill_holes
from pixelheal.models.logistic_mixture import LogisticMixture
from pixelheal.models.pixelcnn_layers import ConditioningStack, OutputHead, channel_groups
from pixelheal.models.pixelcnn_trunks import GatedTrunk, PlainTrunk


@dataclass(frozen=True)
class PixelCNNConfig:
    """Hyper-parameters of `pixelcnn`."""

    in_channels: int = 3
    hidden: int = 64  # trunk width; a plain trunk's 3x3 convolutions use hidden // 2
    n_blocks: int = 4
    gated: bool = False  # True: Gated PixelCNN (vertical + horizontal stacks, no blind spot)
    # 256-way per sub-pixel | binarised images (BCE) | discretised logistic mixture (PixelCNN++)
    output: Literal["softmax", "bernoulli", "logistic_mixture"] = "softmax"
    mixtures: int = 5  # logistics per sub-pixel of `logistic_mixture` (PixelCNN++ uses 10)
    sampling: Sampling = "sample"
    temperature: float = 1.0
    cond_layers: int = 4  # unmasked convolutions over the masked image + mask (conditional only)
    conditional: bool = True  # False: the unconditional density of every pixel (the original MNIST PixelCNN)
    cond_fill: HoleFill = "zero"  # what the conditioning stack sees in the hole (conditional only)

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
        require(self.mixtures >= 1, "mixtures", f"must be at least 1, got {self.mixtures}")
        require(
            self.conditional or self.cond_fill == "zero",
            "cond_fill",
            f"needs conditional: true (an unconditional model has no conditioning), got {self.cond_fill!r}",
        )


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
        mixture = config.output == "logistic_mixture"
        self.mixture = LogisticMixture(config.in_channels, config.mixtures) if mixture else None
        channels, hidden = config.in_channels, config.hidden
        # Construction order (conditioning, trunk, head) fixes the seeded initial weights.
        self.conditioning = ConditioningStack(channels + 1, hidden, config.cond_layers) if config.conditional else None
        trunk = GatedTrunk if config.gated else PlainTrunk
        self.trunk = trunk(channels, hidden, config.n_blocks, conditional=config.conditional)
        out_groups = channel_groups(channels * self.levels, channels) if self.mixture is None else self.mixture.groups()
        self.head = OutputHead(channel_groups(hidden, channels), out_groups)
        if self.mixture is not None and config.cond_fill != "zero":
            self.mixture.start_at_prior(self.head[-1].weight, self.head[-1].bias)

    def ar_input(self, values: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Discrete values → the network's AR input in [-1, 1]."""
        return values.to(dtype) * (2.0 / self.top_value) - 1

    @property
    def unconditional(self) -> bool:
        return not self.config.conditional

    def filled(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """The images with `cond_fill` in the hole: it reads the known pixels only."""
        return fill_holes(images, masks, self.config.cond_fill)

    def condition(
        self, images: torch.Tensor, masks: torch.Tensor, filled: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """Conditioning features of the known pixels and the mask (they never see hole values); None if unconditional.

        `filled`: `self.filled(images, masks)`, when the caller has it already.
        """
        if self.conditioning is None:
            return None
        filled = self.filled(images, masks) if filled is None else filled
        return self.conditioning(torch.cat([filled, masks], dim=1))  # (B, hidden, H, W) from (B, C+1, H, W)

    def mean_prior(self, filled: torch.Tensor) -> torch.Tensor | None:
        """Where the mixture's means start (B, C, H, W) in [-1, 1]: the fill; None without a mixture or a fill."""
        if self.mixture is None or self.conditioning is None or self.config.cond_fill == "zero":
            return None
        return filled * 2 - 1

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

    def head_output(self, features: torch.Tensor) -> torch.Tensor:
        """The head over trunk features, in float32 even under bf16 autocast.

        Its logits and mixture means need more than bf16's 8 bits: near 1 a bf16 mean resolves 1/128, a whole bin.
        """
        with torch.autocast(features.device.type, enabled=False):
            return self.head(features.to(torch.promote_types(features.dtype, torch.float32)))

    def pixel_logits(self, features: torch.Tensor, x: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """Head over trunk features (B, hidden, h, w) → logits (B, C, levels, h, w).

        `x` (B, C, h, w) is the AR input at those pixels: a mixture's means read its earlier channels,
        and start at `prior` (B, C, h, w) (`mean_prior`) when there is one.
        """
        out = self.head_output(features)  # (B, C*levels or mixture width, h, w), channel-major blocks
        if self.mixture is None:
            return out.unflatten(1, (self.channels, self.levels))
        prior = None if prior is None else prior.movedim(1, -1)
        return self.mixture.table(out.movedim(1, -1), x.movedim(1, -1), prior).permute(0, 3, 4, 1, 2)

    def logits(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, C, levels, H, W): the hole values before each sub-pixel come from `images`."""
        x = self.ar_input(self.quantise(images), images.dtype)  # (B, C, H, W) in [-1, 1]
        filled = self.filled(images, masks)
        features = self.trunk(x, self.condition(images, masks, filled))
        return self.pixel_logits(features, x, self.mean_prior(filled))

    def hole_nll(
        self, images: torch.Tensor, masks: torch.Tensor, where: tuple[torch.Tensor, ...], values: torch.Tensor
    ) -> torch.Tensor:
        """NLL in nats (N, C) of the hole pixels' true `values`: a mixture's at those values alone, not all 256."""
        if self.mixture is None:
            return super().hole_nll(images, masks, where, values)
        x = self.ar_input(self.quantise(images), images.dtype)  # (B, C, H, W) in [-1, 1]
        filled = self.filled(images, masks)
        params = self.head_output(self.trunk(x, self.condition(images, masks, filled)))  # (B, width, H, W)
        prior = self.mean_prior(filled)
        prior = None if prior is None else prior.permute(0, 2, 3, 1)[where]
        return -self.mixture.log_prob(params.permute(0, 2, 3, 1)[where], x.permute(0, 2, 3, 1)[where], values, prior)

    def window_logits(
        self, x: torch.Tensor, cond: torch.Tensor | None, col: int, channel: int, prior: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits (b, levels) of `channel` at the last row, column `col`, of a window of AR input `x` (b, C, h, w).

        `prior` (b, C): the mixture means' starting point at that pixel. Only that channel's table is built.
        """
        out = self.head_output(self.trunk.window_features(x, cond, col))[..., 0, 0]  # (b, width)
        if self.mixture is None:
            return out.unflatten(1, (self.channels, self.levels))[:, channel]
        here = x[:, :, -1, col]  # (b, C): the pixel's channels drawn so far
        block = self.mixture.split(out)[channel]
        return self.mixture.channel_table(block, here[:, :channel], None if prior is None else prior[:, : channel + 1])

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
        filled = self.filled(images, masks)  # the fill and the conditioning: once per batch
        cond = self.condition(images, masks, filled)  # (B, hidden, H, W); None if unconditional
        prior = self.mean_prior(filled)
        for i, j, rows in hole_positions(masks):
            top, left, right = self.window(i, j, images.shape[-1])
            x_win = x[:, :, top : i + 1, left:right].index_select(0, rows)  # (b, C, h, w), a copy
            cond_win = None if cond is None else cond[:, :, top : i + 1, left:right].index_select(0, rows)
            prior_here = None if prior is None else prior[rows, :, i, j]  # (b, C)
            for c in range(self.channels):
                logits = self.window_logits(x_win, cond_win, j - left, c, prior_here)  # (b, levels)
                v = choose(logits, rows, values[rows, c, i, j])  # (b,)
                values[rows, c, i, j] = v
                x_win[:, c, -1, j - left] = self.ar_input(v, x.dtype)  # the next channel sees it
                x[rows, c, i, j] = x_win[:, c, -1, j - left]
        return values
