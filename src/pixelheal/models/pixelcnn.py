"""PixelCNN and Gated PixelCNN inpainters (`pixelcnn`): an autoregressive model of the hole pixels.

The autoregressive (AR) input is the quantised image, read through causal masked convolutions
(mask A first, mask B after, colour order R → G → B inside a pixel). An unmasked conditioning stack
over (masked image, mask) is added into every layer, so the model learns p(hole | known pixels).

Inpainting samples only the hole pixels in raster order with the known pixels fixed; see
`pixelheal.models.pixelcnn_sampling` for the cropped sampler and its naive reference. Losses are
cross-entropies of the true hole pixels only (known pixels are given to the conditioning stack, so
predicting them teaches nothing): "loss" in nats per hole sub-pixel, "nll_bpd" the same in bits.
Select the best epoch on `val_nll_bpd` (lower is better).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pixelheal.models.base import InpaintingModel, masked_input
from pixelheal.models.pixelcnn_layers import (
    ConditioningStack,
    GatedLayer,
    MaskedConv2d,
    OutputHead,
    Reach,
    ResidualBlock,
    channel_groups,
)
from pixelheal.models.pixelcnn_sampling import sample_holes

OUTPUTS = {"softmax": 256, "bernoulli": 1}  # logits per sub-pixel
SAMPLINGS = ("sample", "greedy")
FIRST_KERNEL, BLOCK_KERNEL = 7, 3


class PixelCNNInpainter(InpaintingModel):
    """PixelCNN (residual blocks) or Gated PixelCNN (`gated=True`) conditioned on the known pixels."""

    def __init__(self, *, in_channels: int = 3, hidden: int = 64, n_blocks: int = 4, gated: bool = False,
                 output: str = "softmax", sampling: str = "sample", temperature: float = 1.0,
                 cond_layers: int = 4) -> None:
        super().__init__()
        _check_hparams(in_channels, hidden, n_blocks, gated, output, sampling, temperature, cond_layers)
        self.channels, self.levels, self.gated = in_channels, OUTPUTS[output], gated
        self.greedy, self.temperature = sampling == "greedy", float(temperature)
        in_groups, groups = channel_groups(in_channels, in_channels), channel_groups(hidden, in_channels)
        self.conditioning = ConditioningStack(in_channels + 1, hidden, cond_layers)
        if gated:
            self.layers = nn.ModuleList(
                [GatedLayer(in_groups, groups, FIRST_KERNEL, hidden, first=True)]
                + [GatedLayer(groups, groups, BLOCK_KERNEL, hidden, first=False) for _ in range(n_blocks)]
            )
            reaches = [layer.reach for layer in self.layers] + [Reach(up=1)]  # + the vertical→horizontal shift
        else:
            self.first = MaskedConv2d(in_groups, groups, FIRST_KERNEL, "A")
            self.first_cond = nn.Conv2d(hidden, hidden, 1)
            inner = channel_groups(hidden // 2, in_channels)
            self.layers = nn.ModuleList(ResidualBlock(groups, inner, hidden) for _ in range(n_blocks))
            reaches = [self.first.reach] + [layer.reach for layer in self.layers]
        self.head = OutputHead(groups, channel_groups(in_channels * self.levels, in_channels))
        self.reach = sum(reaches, Reach())  # how far the AR input is read from an output pixel

    @property
    def bernoulli(self) -> bool:
        """True when sub-pixels are binary (BCE), False for the 256-way softmax."""
        return self.levels == 1

    def quantise(self, images: torch.Tensor) -> torch.Tensor:
        """Discrete sub-pixel values (long): 0..255, or 0/1 for binarised images."""
        # contract: images in [0, 1]
        if self.bernoulli:
            return (images >= 0.5).long()
        return (images * 255).round().clamp(0, 255).long()

    @property
    def top_value(self) -> int:
        """The largest discrete sub-pixel value: 255, or 1 for binarised images."""
        return 1 if self.bernoulli else 255

    def ar_input(self, values: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Discrete values → the network's AR input in [-1, 1]."""
        return values.to(dtype) * (2.0 / self.top_value) - 1

    def to_image(self, values: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Discrete values → image intensities in [0, 1]."""
        return values.to(dtype) / self.top_value

    def condition(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Conditioning features of the known pixels and the mask; they never see hole values."""
        return self.conditioning(masked_input(images, masks))  # (B, hidden, H, W)

    def trunk(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Causal features (B, hidden, h, w) of AR input `x` (B, C, h, w) plus conditioning `cond`."""
        if self.gated:
            v, h = x, x
            for layer in self.layers:
                v, h = layer(v, h, cond)
            return h
        h = self.first(x) + self.first_cond(cond)
        for layer in self.layers:
            h = layer(h, cond)
        return h

    def pixel_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Head over features (B, hidden, h, w) → logits (B, C, levels, h, w)."""
        out = self.head(features)  # (B, C*levels, h, w), channel-major blocks
        return out.unflatten(1, (self.channels, self.levels))

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits: (B, C, 256, H, W) for softmax, (B, C, H, W) for bernoulli."""
        # Not a completion: the hole pixels before each position are read from `images` itself.
        self._check_input(images, masks)
        x = self.ar_input(self.quantise(images), images.dtype)  # (B, C, H, W) in [-1, 1]
        logits = self.pixel_logits(self.trunk(x, self.condition(images, masks)))
        return logits.squeeze(2) if self.bernoulli else logits

    def nll_bits(self, logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood in bits of `values` (B, C, ...) under `logits` (B, C, levels, ...)."""
        if self.bernoulli:
            nats = F.binary_cross_entropy_with_logits(logits.squeeze(2), values.to(logits.dtype), reduction="none")
        else:
            nats = F.cross_entropy(logits.transpose(1, 2), values, reduction="none")  # class dim first
        return nats / math.log(2)

    def hole_bits(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Bits of every true sub-pixel (B, C, H, W), teacher-forced in one pass; zero off the hole."""
        logits = self(images, masks)
        logits = logits.unsqueeze(2) if self.bernoulli else logits  # (B, C, levels, H, W)
        return self.nll_bits(logits, self.quantise(images)) * masks

    def losses(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean cross-entropy per hole sub-pixel: "loss" in nats, "nll_bpd" in bits (0 for no hole)."""
        bits = self.hole_bits(images, masks).sum()
        dims = (masks.sum() * self.channels).clamp_min(1)
        return {"loss": bits * math.log(2) / dims, "nll_bpd": (bits / dims).detach()}

    @torch.no_grad()
    def validation_step(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
        """Hole likelihood only: sampling every validation image each epoch would dominate training."""
        return {name: value.item() for name, value in self.losses(images, masks).items()}

    @torch.no_grad()
    def test_metrics(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image NLL of the true hole pixels in bits per sub-pixel (NaN for an empty hole)."""
        bits = self.hole_bits(images, masks).flatten(1).sum(1)  # (B,)
        dims = masks.flatten(1).sum(1) * self.channels
        return {"nll_bpd": torch.where(dims > 0, bits / dims.clamp_min(1), torch.full_like(bits, math.nan))}

    @torch.no_grad()
    def sample(self, images: torch.Tensor, masks: torch.Tensor, *, greedy: bool | None = None,
               temperature: float | None = None, generator: torch.Generator | None = None,
               naive: bool = False) -> torch.Tensor:
        """Composited completion: hole pixels drawn in raster order, known pixels returned unchanged."""
        # Defaults: the hyper-parameters `sampling` and `temperature`. Draws use `generator`, else
        # torch's global RNG (`torch.manual_seed` makes them reproducible). `naive=True` runs the
        # full-image reference sampler: the same draws and result, much slower.
        self._check_input(images, masks)
        greedy = self.greedy if greedy is None else greedy
        temperature = self.temperature if temperature is None else temperature
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        return sample_holes(self, images, masks, greedy=greedy, temperature=temperature,
                            generator=generator, naive=naive)

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """One completion, greedy or sampled as the hyper-parameter `sampling` says."""
        return self.sample(images, masks)

    @torch.no_grad()
    def inpaint_samples(self, images: torch.Tensor, masks: torch.Tensor, n_samples: int,
                        generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """`n_samples` sampled completions (always sampled, even when `sampling` is greedy)."""
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")
        # One batched call: the copies share every cropped forward pass.
        out = self.sample(images.repeat(n_samples, 1, 1, 1), masks.repeat(n_samples, 1, 1, 1),
                          greedy=False, generator=generator)  # (n*B, C, H, W)
        return list(out.chunk(n_samples))

    def _check_input(self, images: torch.Tensor, masks: torch.Tensor) -> None:
        """Reject images whose channel count differs from `in_channels`, and mismatched masks."""
        if images.ndim != 4 or images.shape[1] != self.channels:
            raise ValueError(f"images must be (B, {self.channels}, H, W) for in_channels={self.channels}, "
                             f"got {tuple(images.shape)}")
        if masks.shape != (images.shape[0], 1, *images.shape[2:]):
            raise ValueError(f"masks must be (B, 1, H, W) matching images {tuple(images.shape)}, got {tuple(masks.shape)}")


def _check_hparams(in_channels: int, hidden: int, n_blocks: int, gated: bool, output: str, sampling: str,
                   temperature: float, cond_layers: int) -> None:
    """Raise ValueError naming the first invalid hyper-parameter."""
    if not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
    if not isinstance(hidden, int) or hidden < 2 * in_channels:
        # the residual blocks' inner width hidden // 2 needs a channel per colour group
        raise ValueError(f"hidden must be an integer >= 2 * in_channels = {2 * in_channels}, got {hidden!r}")
    if not isinstance(n_blocks, int) or n_blocks < 0:
        raise ValueError(f"n_blocks must be a non-negative integer, got {n_blocks!r}")
    if not isinstance(gated, bool):
        raise ValueError(f"gated must be true or false, got {gated!r}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {sorted(OUTPUTS)}, got {output!r}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {list(SAMPLINGS)}, got {sampling!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not isinstance(cond_layers, int) or cond_layers < 1:
        raise ValueError(f"cond_layers must be a positive integer, got {cond_layers!r}")


def pixelcnn(**hparams) -> PixelCNNInpainter:
    """PixelCNN inpainter; `gated=True` for the Gated PixelCNN, `output="bernoulli"` for binary images."""
    return PixelCNNInpainter(**hparams)
