"""Small building blocks shared by the convolutional architectures."""

from __future__ import annotations

from functools import partial

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


def dense_gradient(x: torch.Tensor) -> torch.Tensor:
    """`x` itself, whose gradient (if it gets one) is copied into x's own dense layout before it flows on.

    For a map about to be concatenated: torch.cat's backward hands each input a strided slice of the gradient,
    and the CPU backward of ReLU and of bilinear upsampling take a slow path on such a slice (3-18x slower on a
    64-channel 32x32 batch here, against a copy costing half a dense ReLU backward).
    """
    if x.requires_grad:
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        x.register_hook(partial(torch.Tensor.contiguous, memory_format=layout))
    return x


class TransposedUpsample(nn.ConvTranspose2d):
    """Learned x2 upsampling to the skip's width (a 2x2 transposed convolution), padded to the skip's size."""

    def __init__(self, in_channels: int, skip_channels: int) -> None:
        super().__init__(in_channels, skip_channels, kernel_size=2, stride=2)

    @staticmethod
    def out_width(in_channels: int, skip_channels: int) -> int:
        """Channels of the upsampled features."""
        return skip_channels

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # Stride 2 with a 2x2 kernel: each input pixel alone makes its output 2x2 block, so this is a 1x1 convolution
        # to (skip x 2 x 2) channels rearranged by pixel_shuffle. The same sums (tests); oneDNN's
        # transposed-convolution backward took 1.7x as long on the CPU.
        weight = self.weight.permute(1, 2, 3, 0).reshape(-1, self.in_channels, 1, 1)  # (skip x 2 x 2, in, 1, 1)
        bias = None if self.bias is None else self.bias.repeat_interleave(4)
        x = F.pixel_shuffle(F.conv2d(x, weight, bias), 2)  # (B, skip, 2h, 2w)
        # Odd sides (28 → 14 → 7 → 3) come back one short: pad to the skip's size. Always, even by nothing: a
        # branch on the sizes would fix them in a graph exported with dynamic height and width.
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
        return dense_gradient(F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False))


def resize_mask(masks: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Mask at the scale of `features`: the fraction of hole pixels each cell covers, in the features' dtype.

    The dtype matters under autocast: a float32 mask concatenated to bfloat16 features would promote the whole
    concatenation, which every convolution reading it then casts back (half of unet_aspp's copying in a bf16 step).
    """
    return F.adaptive_avg_pool2d(masks, features.shape[-2:]).to(features.dtype)  # (B, 1, h, w) in [0, 1]


def conv_of_concatenation(conv: nn.Conv2d, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """conv(features ++ mask) as two convolutions over the slices of its weight: the same sum, same parameters.

    It never builds the (C+1)-channel map: oneDNN runs such odd widths slowly, and in bfloat16 NHWC a dilated
    convolution at 32x32 over more than 16 channels that are not a multiple of 16 (17, 33, 65, 72 and 129 among
    those tried; torch 2.14, oneDNN 3.12) returns NaN weight gradients, while C (a multiple of 16 at the usual
    widths) and the mask's 1 channel are fine.
    """
    c = features.shape[1]
    common = {"stride": conv.stride, "padding": conv.padding, "dilation": conv.dilation}
    weight = conv.weight
    return F.conv2d(features, weight[:, :c], conv.bias, **common) + F.conv2d(mask, weight[:, c:], **common)


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
        conv, relu = self.context
        context = relu(conv_of_concatenation(conv, features, resize_mask(masks, features)))
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
        # The image-level branch reads the means of features ++ mask, which forward computes; the Identity holds the
        # place of the pooling that used to be here, so checkpoints keep their "pooled.1.*" keys.
        self.pooled = nn.Sequential(nn.Identity(), nn.Conv2d(channels + 1, branch, 1), nn.ReLU(inplace=True))
        self.context = nn.Sequential(nn.Conv2d(branch * (len(dilations) + 1), channels, 1), nn.ReLU(inplace=True))

    def forward(self, features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        m = resize_mask(masks, features)
        branches = [dense_gradient(relu(conv_of_concatenation(conv, features, m))) for conv, relu in self.branches]
        # The mean of features ++ mask is the means concatenated, so the pooling runs before the concatenation;
        # as a sum over the pixels, divided: the backward of a bfloat16 channels-last mean is 13x slower here.
        sums = torch.cat([features.sum((2, 3), keepdim=True), m.sum((2, 3), keepdim=True)], dim=1)  # (B, C+1, 1, 1)
        means = sums / (features.shape[-2] * features.shape[-1])
        # The image-level branch is written into a map laid out as the others: an expanded view would make the
        # concatenation contiguous (NCHW), which the convolutions then copy back under channels_last.
        pooled = torch.empty_like(branches[0]).copy_(self.pooled(means).expand_as(branches[0]))
        context = self.context(torch.cat([*branches, pooled], dim=1))
        return features + context * torch.sigmoid(self.gate(context))
