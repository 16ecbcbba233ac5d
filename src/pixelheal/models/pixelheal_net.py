"""PixelHeal's own model (`pixelheal`): a stack of masked convolutions regressing the original image.

The original PixelHeal system, as described: the occluded image (here the image with its hole
blanked, plus the mask as a channel: `masked_input`) goes through a mask-A convolution, then mask-B
convolutions, each followed by a ReLU, and a final 1x1 convolution to the image's channels (a
sigmoid keeps the prediction in [0, 1], the range every regression architecture returns); it is
trained with MSE against the original over the whole image (Adam 1e-3, batch 8, 20 epochs on
64x64 paired folders: `conf/paired64`).

The masked convolutions are the PixelCNN's causal ones (`pixelcnn_layers.MaskedConv2d`) with one
colour group: mask A hides the centre pixel, mask B shows it, and every output pixel reads the input
only at and above its row, left of it on its own row. That is the original design, kept as it was;
the model is a regression architecture, not an autoregressive one: no sampling, `forward` is the
whole-image prediction and `inpaint` composites it into the known pixels like the U-Nets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pixelheal.config import require
from pixelheal.models.base import InpaintingModel
from pixelheal.models.fills import fill_holes, masked_input
from pixelheal.models.pixelcnn_layers import MaskedConv2d


@dataclass(frozen=True)
class PixelHealConfig:
    """Hyper-parameters of `pixelheal`."""

    in_channels: int = 3
    hidden: int = 64  # channels of every masked convolution
    n_layers: int = 5  # mask-B convolutions after the first (mask-A) one
    first_kernel: int = 7  # size of the mask-A convolution
    kernel: int = 3  # size of each mask-B convolution
    mask_channel: bool = True  # the mask as an extra input channel

    def __post_init__(self) -> None:
        for key in ("in_channels", "hidden"):
            require(getattr(self, key) >= 1, key, f"must be at least 1, got {getattr(self, key)}")
        require(self.n_layers >= 0, "n_layers", f"must be at least 0, got {self.n_layers}")
        # mask A hides the centre: a 1x1 mask-A convolution would read nothing at all
        require(
            self.first_kernel >= 3 and self.first_kernel % 2 == 1,
            "first_kernel",
            f"must be odd and at least 3, got {self.first_kernel}",
        )
        require(self.kernel >= 1 and self.kernel % 2 == 1, "kernel", f"must be odd and at least 1, got {self.kernel}")


def _one_group(channels: int) -> torch.Tensor:
    """Colour groups of `channels` channels all in one group: plain mask A / mask B, no R → G → B split."""
    return torch.zeros(channels, dtype=torch.long)


class PixelHealInpainter(InpaintingModel):
    """Masked-convolution stack (mask A, then mask B, ReLUs) and a final 1x1 convolution, trained with MSE."""

    def __init__(self, config: PixelHealConfig) -> None:
        super().__init__()
        self.config = config
        inputs, hidden = config.in_channels + int(config.mask_channel), config.hidden
        self.first = MaskedConv2d(_one_group(inputs), _one_group(hidden), config.first_kernel, "A")
        self.layers = nn.ModuleList(
            MaskedConv2d(_one_group(hidden), _one_group(hidden), config.kernel, "B") for _ in range(config.n_layers)
        )
        self.out = nn.Conv2d(hidden, config.in_channels, 1)

    def network_input(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """The occluded image (holes zeroed), with the mask as an extra channel if `mask_channel`."""
        return masked_input(images, masks) if self.config.mask_channel else fill_holes(images, masks)

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Whole-image prediction (B, C, H, W) in [0, 1]; it never sees the hole's true values."""
        if images.ndim != 4 or images.shape[1] != self.config.in_channels:
            raise ValueError(
                f"images must be (B, {self.config.in_channels}, H, W) for in_channels={self.config.in_channels}, "
                f"got {tuple(images.shape)}"
            )
        x = F.relu(self.first(self.network_input(images, masks)))  # (B, hidden, H, W)
        for layer in self.layers:
            x = F.relu(layer(x))
        return torch.sigmoid(self.out(x))

    def losses(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """MSE of the whole-image prediction against the original (no hole weighting, as the original)."""
        return {"loss": F.mse_loss(self(images, masks), images)}
