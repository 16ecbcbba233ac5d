"""Small building blocks shared by the convolutional architectures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DoubleConv(nn.Sequential):
    """(3x3 conv → BatchNorm → ReLU) twice: the basic U-Net stage."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


# The original GAN's generator uses a leaky ReLU with this negative slope in every stage.
LEAKY_SLOPE = 0.2


class LeakyConv(nn.Sequential):
    """3x3 conv with a bias → LeakyReLU(0.2), no normalisation: one stage of the original GAN's generator."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        )


class LeakyDoubleConv(nn.Sequential):
    """`LeakyConv` twice: the original GAN's U-Net stage (no BatchNorm, every conv with a bias)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(*LeakyConv(in_channels, out_channels), *LeakyConv(out_channels, out_channels))


class TransposedUpsample(nn.ConvTranspose2d):
    """Learned x2 upsampling to the skip's width (a 2x2 transposed convolution), padded to the skip's size."""

    def __init__(self, in_channels: int, skip_channels: int) -> None:
        super().__init__(in_channels, skip_channels, kernel_size=2, stride=2)

    @staticmethod
    def out_width(in_channels: int, skip_channels: int) -> int:
        """Channels of the upsampled features."""
        return skip_channels

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)  # (B, skip, 2h, 2w)
        # Odd sides (28 → 14 → 7 → 3) come back one short: pad to the skip's size.
        return F.pad(x, [0, skip.shape[-1] - x.shape[-1], 0, skip.shape[-2] - x.shape[-2]])


class BilinearUpsample(nn.Module):
    """Parameter-free bilinear upsampling to the skip's size; the channel count is kept."""

    def __init__(self, in_channels: int, skip_channels: int) -> None:
        super().__init__()  # nothing to learn: the widths are taken only to match TransposedUpsample

    @staticmethod
    def out_width(in_channels: int, skip_channels: int) -> int:
        """Channels of the upsampled features."""
        return in_channels

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # Upsampling to the skip's exact size keeps odd sides (e.g. 25 → 12 → 25) aligned.
        return F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)


def resize_mask(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Mask at a feature scale: the fraction of hole pixels each feature cell covers."""
    return F.adaptive_avg_pool2d(masks, size)  # (B, 1, h, w) in [0, 1]


class FeatureRefinement(nn.Module):
    """Mask-aware feature refinement: a gate computed from features and mask rescales the features.

    The gate lets the decoder treat cells inside the hole (which carry no encoder evidence)
    differently from known cells; the residual path keeps the block an identity at init.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.context = nn.Sequential(nn.Conv2d(channels + 1, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.gate = nn.Conv2d(channels, channels, 1)

    def forward(self, features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        m = resize_mask(masks, features.shape[-2:])
        context = self.context(torch.cat([features, m], dim=1))
        return features + context * torch.sigmoid(self.gate(context))


class ASPPRefinement(FeatureRefinement):
    """Feature refinement whose context comes from atrous spatial pyramid pooling.

    Parallel dilated 3x3 convolutions see the hole's surroundings at several distances, and a
    global-pooling branch adds image-level context, before the same gated residual as the parent.
    """

    def __init__(self, channels: int, dilations: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__(channels)
        branch = max(channels // 4, 8)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels + 1, branch, 3, padding=d, dilation=d), nn.ReLU(inplace=True))
            for d in dilations
        )
        self.pooled = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels + 1, branch, 1), nn.ReLU(inplace=True))
        self.context = nn.Sequential(nn.Conv2d(branch * (len(dilations) + 1), channels, 1), nn.ReLU(inplace=True))

    def forward(self, features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        x = torch.cat([features, resize_mask(masks, features.shape[-2:])], dim=1)  # (B, C+1, h, w)
        pooled = self.pooled(x).expand(-1, -1, *x.shape[-2:])
        context = self.context(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))
        return features + context * torch.sigmoid(self.gate(context))
