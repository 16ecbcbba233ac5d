"""U-Net inpainters with mask-aware feature refinement modules (`unet_frm`, `unet_aspp`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelheal.models.base import HOLE_FILLS, InpaintingModel, fill_holes, fill_logit
from pixelheal.models.blocks import ASPPRefinement, DoubleConv, FeatureRefinement


class DecoderBlock(nn.Module):
    """Upsample → concatenate the skip → refine with the mask → DoubleConv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, refinement: nn.Module) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, skip_channels, kernel_size=2, stride=2)
        self.refine = refinement
        self.conv = DoubleConv(2 * skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        # Odd sides (28 → 14 → 7 → 3) come back one short: pad to the skip's size.
        x = F.pad(x, [0, skip.shape[-1] - x.shape[-1], 0, skip.shape[-2] - x.shape[-2]])
        x = torch.cat([x, skip], dim=1)  # (B, 2*skip, h, w)
        return self.conv(self.refine(x, masks))


class UNetInpainter(InpaintingModel):
    """U-Net over the masked image plus mask; `widths` are the encoder stages then the bottleneck."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        refinement: str = "simple",
        dilations: tuple[int, ...] = (1, 2, 4),
        loss: str = "mse",
        hole_weight: float = 1.0,
        hole_fill: str = "zero",
    ) -> None:
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"widths: need at least one encoder stage and a bottleneck, got {list(widths)}")
        if loss not in ("mse", "l1"):
            raise ValueError(f"loss: expected 'mse' or 'l1', got {loss!r}")
        if refinement not in ("simple", "aspp"):
            raise ValueError(f"refinement: expected 'simple' or 'aspp', got {refinement!r}")
        if hole_fill not in HOLE_FILLS:
            raise ValueError(f"hole_fill: expected one of {list(HOLE_FILLS)}, got {hole_fill!r}")
        self.loss_kind, self.hole_weight, self.hole_fill = loss, hole_weight, hole_fill
        *stages, bottom = widths
        chans = [in_channels + 1, *stages]
        self.encoders = nn.ModuleList(DoubleConv(a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.bottleneck = DoubleConv(stages[-1], bottom)
        ups = [bottom, *reversed(stages)]
        self.decoders = nn.ModuleList(
            DecoderBlock(a, b, b, FeatureRefinement(2 * b) if refinement == "simple" else ASPPRefinement(2 * b, tuple(dilations)))
            for a, b in zip(ups[:-1], ups[1:])
        )
        self.head = nn.Conv2d(stages[0], in_channels, kernel_size=1)
        # A zero head starts the network at its fill (mid-grey for "zero"): training learns a correction.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        filled = fill_holes(images, masks, self.hole_fill)
        x, skips = torch.cat([filled, masks], dim=1), []  # (B, C+1, H, W)
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)  # (B, widths[-1], H / 2**stages, W / 2**stages)
        for decoder, skip in zip(self.decoders, reversed(skips)):
            x = decoder(x, skip, masks)
        logits = self.head(x)
        if self.hole_fill != "zero":  # an interpolated fill is the prior: the network predicts its correction
            logits = logits + fill_logit(filled)
        return torch.sigmoid(logits)  # (B, C, H, W) in [0, 1]

    def losses(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        error = self(images, masks) - images
        error = error.abs() if self.loss_kind == "l1" else error.square()
        # Up-weighting the hole focuses capacity where the composited output is actually scored.
        weights = 1 + (self.hole_weight - 1) * masks
        return {"loss": (weights * error).mean()}


def unet_frm(**kwargs) -> UNetInpainter:
    """U-Net with the simple convolutional feature refinement module."""
    return UNetInpainter(refinement="simple", **kwargs)


def unet_aspp(**kwargs) -> UNetInpainter:
    """U-Net with the ASPP-based feature refinement module."""
    return UNetInpainter(refinement="aspp", **kwargs)
