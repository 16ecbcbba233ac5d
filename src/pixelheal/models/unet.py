"""One mask-aware U-Net assembly, and the U-Net inpainters built from it (`unet_frm`, `unet_aspp`).

`UNet` is written once, with pluggable pieces: the upsampling of each decoder block (learned
`TransposedUpsample` or parameter-free `BilinearUpsample`), the mask-aware refinement after the skip
is concatenated (`FeatureRefinement`, `ASPPRefinement` or none), an optional `SelfAttention`
before the bottleneck, the convolution stage (`DoubleConv` by default; the last decoder's may
differ) and the head (a zero-initialised 1x1 conv by default). The U-Net inpainters and the GAN's
generator (`models.gan`, whose faithful variant swaps the stages and the head) are such U-Nets.

U-Net inpainter (widths w1..wk, then the bottleneck wb; input: the filled image ++ the mask):
    enc_i DoubleConv(w_{i-1} → w_i), max-pool after each; bottleneck DoubleConv(wk → wb);
    dec_i: ConvTranspose2d(x2 → w_i) → concat skip (2 w_i) → refinement(2 w_i) → DoubleConv(2 w_i → w_i);
    head 1x1 conv (w1 → C, zero at init) → sigmoid(head + logit(fill)) in [0, 1] (no prior for "zero");
    with `correction: pixel`, fill + head, clamped to [0, 1] only when completing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from pixelheal.config import require
from pixelheal.models.attention import SelfAttention
from pixelheal.models.base import InpaintingModel
from pixelheal.models.blocks import ASPPRefinement, DoubleConv, FeatureRefinement, TransposedUpsample
from pixelheal.models.fills import HoleFill, fill_holes, fill_logit
from pixelheal.models.losses import RegressionLoss, weighted_error

Refinement = Callable[[int], nn.Module]  # channels -> module(features, masks), same shape out
Stage = Callable[[int, int], nn.Module]  # (in, out) channels -> the convolutions of one U-Net stage
Head = Callable[[int, int], nn.Module]  # (features, image channels) -> the output's logits
Correction = Literal["logit", "pixel"]  # where the network's correction is added to the fill (see UNetConfig)


def zero_head(in_channels: int, channels: int) -> nn.Conv2d:
    """A 1x1 conv that starts at zero, so an untrained U-Net returns activation(prior)."""
    head = nn.Conv2d(in_channels, channels, kernel_size=1)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return head


class Upsample(Protocol):
    """A decoder's upsampling (`TransposedUpsample`, `BilinearUpsample`): built from (in, skip) channels."""

    def __call__(self, in_channels: int, skip_channels: int) -> nn.Module: ...  # module(x, skip) at the skip's size

    def out_width(self, in_channels: int, skip_channels: int) -> int: ...  # channels it outputs


class DecoderBlock(nn.Module):
    """Upsample → concatenate the skip → refine with the mask (if any) → a stage to the skip's width."""

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        upsample: Upsample,
        refinement: Refinement | None,
        stage: Stage = DoubleConv,
    ) -> None:
        super().__init__()
        merged = upsample.out_width(in_channels, skip_channels) + skip_channels
        # The refinement draws its weights before the upsampling (as the original U-Net built them), so
        # seeded builds are unchanged; it is registered after it, so the state_dict reads up, refine, conv.
        refine = refinement(merged) if refinement is not None else None
        self.up = upsample(in_channels, skip_channels)
        self.refine = refine
        self.conv = stage(merged, skip_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.up(x, skip), skip], dim=1)  # (B, up + skip, h, w)
        if self.refine is not None:
            x = self.refine(x, masks)
        return self.conv(x)


class UNet(nn.Module):
    """U-Net over an image ++ its mask; `widths` are the encoder stages, then the bottleneck.

    output = activation(head(features) + prior). The default 1x1 head starts at zero, so an
    untrained network returns activation(prior): the fill it is given as a prior (mid-grey without
    one), and training learns a correction to it. `stage` builds every encoder, bottleneck and
    decoder stage, `last_stage` (default: `stage`) the last decoder's.
    """

    def __init__(
        self,
        channels: int,
        widths: Sequence[int],
        *,
        upsample: Upsample,
        refinement: Refinement | None = None,
        attention: bool = False,
        activation: Callable[[torch.Tensor], torch.Tensor] = torch.sigmoid,
        stage: Stage = DoubleConv,
        last_stage: Stage | None = None,
        head: Head = zero_head,
    ) -> None:
        super().__init__()
        *stages, bottom = widths
        chans = [channels + 1, *stages]
        self.encoders = nn.ModuleList(stage(a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.attention = SelfAttention(stages[-1]) if attention else nn.Identity()
        self.bottleneck = stage(stages[-1], bottom)
        ups = [bottom, *reversed(stages)]
        decoder_stages = [stage] * (len(ups) - 2) + [last_stage or stage]
        self.decoders = nn.ModuleList(
            DecoderBlock(a, b, upsample, refinement, s) for a, b, s in zip(ups[:-1], ups[1:], decoder_stages)
        )
        self.head = head(stages[0], channels)
        self.activation = activation

    def forward(self, filled: torch.Tensor, masks: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """`filled`: (B, C, H, W) image with its holes filled; `prior`: logits the head's output is added to."""
        side = 2 ** len(self.encoders)  # every max-pool must leave at least one cell
        if min(filled.shape[-2:]) < side:
            raise ValueError(f"unet: images must be at least {side}x{side} pixels, got {tuple(filled.shape[-2:])}")
        x, skips = torch.cat([filled, masks], dim=1), []  # (B, C+1, H, W)
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(self.attention(x))  # (B, widths[-1], H / 2**stages, W / 2**stages)
        for decoder, skip in zip(self.decoders, reversed(skips)):
            x = decoder(x, skip, masks)
        logits = self.head(x)  # (B, C, H, W)
        return self.activation(logits if prior is None else logits + prior)


@dataclass(frozen=True)
class UNetConfig:
    """Hyper-parameters of `unet_frm` (and, with `dilations`, of `unet_aspp`)."""

    in_channels: int = 3
    widths: tuple[int, ...] = (64, 128, 256, 512)  # encoder stages, then the bottleneck
    loss: RegressionLoss = "mse"  # mse | l1 | log_mse (see models.losses)
    hole_weight: float = 1.0  # loss weight of hole pixels relative to known ones
    hole_fill: HoleFill = "zero"
    # logit: sigmoid(head + logit(fill)), the original. pixel: fill + head, whose gradient does not shrink with
    # sigmoid'(fill) where the fill is near black or white (unet_frm's 200-s runs: hole PSNR 21.85 against 21.75).
    correction: Correction = "logit"

    def __post_init__(self) -> None:
        require(self.in_channels >= 1, "in_channels", f"must be >= 1, got {self.in_channels}")
        require(
            len(self.widths) >= 2,
            "widths",
            f"need at least one encoder stage and a bottleneck, got {list(self.widths)}",
        )
        require(min(self.widths) >= 1, "widths", f"must all be >= 1, got {list(self.widths)}")
        require(self.hole_weight >= 0, "hole_weight", f"must be >= 0, got {self.hole_weight}")


@dataclass(frozen=True)
class UNetASPPConfig(UNetConfig):
    """Hyper-parameters of `unet_aspp`: those of `unet_frm` plus the ASPP dilation rates."""

    dilations: tuple[int, ...] = (1, 2, 4)

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            len(self.dilations) >= 1 and min(self.dilations) >= 1,
            "dilations",
            f"need at least one rate, each >= 1, got {list(self.dilations)}",
        )


class UNetInpainter(InpaintingModel):
    """A U-Net regressing the whole image from the filled image ++ mask; an interpolated fill is its prior."""

    def __init__(self, config: UNetConfig, refinement: Refinement) -> None:
        super().__init__()
        self.config = config
        in_logits = config.correction == "logit"
        self.unet = UNet(
            config.in_channels,
            config.widths,
            upsample=TransposedUpsample,
            refinement=refinement,
            activation=torch.sigmoid if in_logits else nn.Identity(),
        )

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        filled = fill_holes(images, masks, self.config.hole_fill)
        # An interpolated fill is the prior the network corrects; the zero fill is none (mid-grey or black start).
        if self.config.hole_fill == "zero":
            prior = None
        else:
            prior = fill_logit(filled) if self.config.correction == "logit" else filled
        return self.unet(filled, masks, prior)  # (B, C, H, W); in [0, 1] for "logit"

    def networks(self) -> tuple[str, ...]:
        return ("unet",)

    def losses(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        # Up-weighting the hole focuses capacity where the composited output is actually scored.
        weights = 1 + (self.config.hole_weight - 1) * masks
        return {"loss": weighted_error(self(images, masks), images, weights, self.config.loss)}


def unet_frm(config: UNetConfig) -> UNetInpainter:
    """U-Net with the simple convolutional feature refinement module."""
    return UNetInpainter(config, FeatureRefinement)


def unet_aspp(config: UNetASPPConfig) -> UNetInpainter:
    """U-Net with the ASPP-based feature refinement module."""
    return UNetInpainter(config, partial(ASPPRefinement, dilations=config.dilations))
