"""GAN inpainter: a U-Net generator with self-attention and a PatchGAN discriminator (`gan`).

Generator (b = `base_channels`; 4,918,532 parameters at b = 64 with 3 image channels), a
`models.unet.UNet` with widths (b, 2b, 4b, 4b), bilinear upsampling, no refinement and attention:
    input (C+1, H, W): the masked image in [-1, 1] ++ the mask; hole pixels are 0 (mid grey) or,
    with `hole_fill` smooth / biharmonic, an interpolation that is also the output's prior
    enc1 DoubleConv(C+1 → b) at H, max-pool; enc2 DoubleConv(b → 2b) at H/2, max-pool;
    enc3 DoubleConv(2b → 4b) at H/4, max-pool;
    SelfAttention(4b, query/key 4b/8) at H/8, then the bottleneck DoubleConv(4b → 4b);
    decoder: parameter-free bilinear x2 upsampling (to the skip's size) → concat skip → DoubleConv:
    dec3 (4b+4b → 4b), dec2 (4b+2b → 2b), dec1 (2b+b → b);
    head 1x1 conv (b → C, zero at init) → tanh, in [-1, 1]
    (with a prior: tanh(head + logit(fill) / 2), so an untrained generator returns the fill).
    (DoubleConv = two 3x3 conv → BatchNorm → ReLU, from `models.blocks`.)
    blocks: faithful, the original's generator (4,880,836 parameters at b = 64 with 3 channels):
    every stage is `LeakyDoubleConv` (two 3x3 conv with a bias → LeakyReLU(0.2), no BatchNorm), and
    dec1 is one such conv (2b+b → b) followed by the head, a 3x3 conv b → C with PyTorch's default
    initialisation (so an untrained generator does not return its fill prior); then tanh.
    Per block at b = 64: enc1 39,296; enc2 221,440; enc3 885,248; attention 82,241;
    bottleneck 1,180,160; dec3 1,769,984; dec2 590,080; dec1 112,387 (with the head).
Discriminator (PatchGAN, d = `disc_channels`; 35,553 parameters at d = 32 with 3 channels):
    conv(C → d, 4, s2) → LeakyReLU(0.2) → conv(d → 2d, 4, s2) → BatchNorm → LeakyReLU(0.2)
    → conv(2d → 1, 4): one logit per overlapping patch of its [-1, 1] input.

Variants (`variant`):
    whole_image: the generator sees the whole masked image (the original used base 32 here).
    hole_context (default, the original's main setting): per image, the bounding box of the hole
    grown by a context ring of `context_ring` x the image's shorter side (0.02 = 4 px at 200 px),
    then widened to a square where the image allows (so square holes are not distorted), is
    resized to `crop_size` x `crop_size`; the prediction is resized back into that box and only its
    hole pixels are kept (`models.crops`). Images whose mask is empty are returned unchanged.

The context ring (`ring_mask`): false, it only sizes the hole_context crop; true (the original), the
hole dilated by the ring (a square dilation of round(context_ring x shorter side) px, 4 px at 200)
is the generator's mask channel and the region of the L1 term (hole + ring); the hole alone is
still what is zeroed in the input and what the output is composited over.

Training (`training_step`): one discriminator step on real vs composited fake images (the crops in
hole_context), then one generator step with the discriminator frozen, each with its own optimiser.
Generator loss = w_adv * adversarial(D(composited fake) vs real) + w_l1 * L1 + w_edge * Sobel-edge
+ w_ssim * (1 - SSIM), the last three between the raw prediction and the real image in [0, 1]
(pix2pix convention: the known pixels supervise the generator too; `hole_weight` > 1 makes L1 a
weighted mean that counts each hole pixel that many times; with `ring_mask` it is that mean over
the hole + ring only). Adversarial loss:
BCE-with-logits by default (the original), or least squares ("lsgan").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pixelheal.config import field_names, require
from pixelheal.models.base import InpaintingModel, composite, optimise
from pixelheal.models.blocks import BilinearUpsample, LeakyConv, LeakyDoubleConv
from pixelheal.models.crops import HoleCrops, hole_crops, paste
from pixelheal.models.fills import HoleFill, fill_holes, fill_logit
from pixelheal.models.losses import (
    AdversarialLoss,
    adversarial_loss,
    edge_loss,
    l1_loss,
    log_mse_loss,
    ssim_loss,
)
from pixelheal.models.unet import UNet

# Hole crops also feed the 3-conv PatchGAN, which needs a few cells to judge.
MIN_CROP = 16
Blocks = Literal["batchnorm", "faithful"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator's loss terms; a partial mapping keeps the others at the original values."""

    adversarial: float = 1.0
    l1: float = 100.0
    edge: float = 10.0
    ssim: float = 1.0
    log_mse: float = 0.0  # 10 log10 of the weighted MSE per image (models.losses): the test's PSNR, as a loss

    def __post_init__(self) -> None:
        for name in field_names(LossWeights):
            require(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")

    def total(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted sum of the loss terms, in declaration order."""
        return sum(getattr(self, name) * terms[name] for name in field_names(LossWeights))


LOSS_TERMS = tuple(field_names(LossWeights))


@dataclass(frozen=True)
class GANConfig:
    """Hyper-parameters of `gan` (defaults: the improved generator in the original's hole+context setting;
    `blocks: faithful` with `ring_mask: true` is the original itself)."""

    in_channels: int = 3
    variant: Literal["whole_image", "hole_context"] = "hole_context"
    base_channels: int = 64
    disc_channels: int = 32
    context_ring: float = 0.02  # hole_context: a fraction of the image's shorter side around the hole's box
    crop_size: int = 40  # hole_context: the side the crops are resized to
    loss_weights: LossWeights = dataclasses.field(default_factory=LossWeights)
    adversarial_loss: AdversarialLoss = "bce"
    hole_weight: float = 1.0  # > 1 weights hole pixels up in L1: known pixels are copied through anyway
    hole_fill: HoleFill = "zero"
    blocks: Blocks = "batchnorm"  # faithful: the original generator's stages and 3x3 head (see the module doc)
    ring_mask: bool = False  # true: hole + context ring is the mask channel and the L1 region (the original)

    def __post_init__(self) -> None:
        for name in ("in_channels", "base_channels", "disc_channels"):
            require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        require(
            0.0 <= self.context_ring < 0.5,
            "context_ring",
            f"must be in [0, 0.5) (a fraction of the image's shorter side), got {self.context_ring}",
        )
        require(self.crop_size >= MIN_CROP, "crop_size", f"must be >= {MIN_CROP}, got {self.crop_size}")
        require(self.hole_weight >= 1, "hole_weight", f"must be >= 1, got {self.hole_weight}")


class PatchDiscriminator(nn.Sequential):
    """PatchGAN: a logit per overlapping patch, so realism is judged locally (textures, seams)."""

    def __init__(self, in_channels: int, base: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, base, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base, 2 * base, 4, stride=2, padding=1),
            nn.BatchNorm2d(2 * base),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * base, 1, 4, padding=1),
        )


def faithful_head(in_channels: int, channels: int) -> nn.Conv2d:
    """The original's last conv: 3x3, default initialisation (not zero, unlike the improved 1x1 head)."""
    return nn.Conv2d(in_channels, channels, 3, padding=1)


def generator(channels: int, base: int, blocks: Blocks = "batchnorm") -> UNet:
    """The three-stage U-Net generator with self-attention before the bottleneck; output in [-1, 1]."""
    widths = (base, 2 * base, 4 * base, 4 * base)
    if blocks == "faithful":
        return UNet(
            channels,
            widths,
            upsample=BilinearUpsample,
            attention=True,
            activation=torch.tanh,
            stage=LeakyDoubleConv,
            last_stage=LeakyConv,
            head=faithful_head,
        )
    return UNet(channels, widths, upsample=BilinearUpsample, attention=True, activation=torch.tanh)


def dilate(masks: torch.Tensor, ring: int) -> torch.Tensor:
    """The hole grown by `ring` px in every direction (a square dilation), same shape."""
    if ring == 0:
        return masks
    return F.max_pool2d(masks, 2 * ring + 1, stride=1, padding=ring)  # (B, 1, H, W)


class GANInpainter(InpaintingModel):
    """Generator + discriminator in one module, so one state_dict (and checkpoint) holds both."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = generator(config.in_channels, config.base_channels, config.blocks)
        self.discriminator = PatchDiscriminator(config.in_channels, config.disc_channels)

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Full-size prediction in [0, 1]; hole_context predicts inside each hole's box (elsewhere: the image)."""
        if self.config.variant == "whole_image":
            return self.predict(images, masks, self.mask_channel(masks))
        crops = self._crops(images, masks)
        if crops is None:
            return images.clone()
        return paste(images, crops, self.predict(*_crop_view(crops)))

    def mask_channel(self, masks: torch.Tensor) -> torch.Tensor:
        """The generator's mask channel for full-size masks: the hole, or with `ring_mask` hole + ring."""
        if not self.config.ring_mask:
            return masks
        return dilate(masks, round(self.config.context_ring * min(masks.shape[-2:])))

    def _crops(self, images: torch.Tensor, masks: torch.Tensor) -> HoleCrops | None:
        """Hole crops of the images, their holes and (with `ring_mask`) their hole + ring masks."""
        if self.config.ring_mask:  # channel 0 (the hole) places each box; the ring mask is cut alongside
            masks = torch.cat([masks, self.mask_channel(masks)], dim=1)
        return hole_crops(images, masks, self.config.context_ring, self.config.crop_size)

    def predict(self, images: torch.Tensor, masks: torch.Tensor, channel: torch.Tensor | None = None) -> torch.Tensor:
        """Generator prediction in [0, 1] for images in [0, 1]; `channel`: its mask input (default: `masks`)."""
        channel = masks if channel is None else channel
        if self.config.hole_fill == "zero":  # hole = 0: mid-grey in [-1, 1]
            return (self.generator(fill_holes(images * 2 - 1, masks), channel) + 1) / 2
        filled = fill_holes(images, masks, self.config.hole_fill)
        # tanh(z / 2) = 2 sigmoid(z) - 1: half the fill's logit makes the zero-head generator output the fill.
        return (self.generator(filled * 2 - 1, channel, fill_logit(filled) / 2) + 1) / 2  # (B, C, H, W) in [0, 1]

    def _views(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """(real, masks, mask channel, prediction) as the losses see them: whole images or hole crops; None if no hole."""
        if self.config.variant == "hole_context":
            crops = self._crops(images, masks)
            if crops is None:
                return None
            images, masks, channel = _crop_view(crops)
        else:
            channel = self.mask_channel(masks)
        return images, masks, channel, self.predict(images, masks, channel)

    def _discriminate(self, images: torch.Tensor) -> torch.Tensor:
        """Patch logits for images in [0, 1] (the discriminator works in [-1, 1])."""
        return self.discriminator(images * 2 - 1)  # (B, 1, h, w)

    def _adversarial(self, images: torch.Tensor, real: bool) -> torch.Tensor:
        return adversarial_loss(self._discriminate(images), real, self.config.adversarial_loss)

    def _generator_terms(
        self, real: torch.Tensor, masks: torch.Tensor, channel: torch.Tensor, prediction: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Weighted generator terms; the adversarial one on the composited fake."""
        weights = 1 + (self.config.hole_weight - 1) * masks
        if self.config.ring_mask:  # the original's L1 region: hole + ring
            weights = weights * channel
        terms = {
            "adversarial": self._adversarial(composite(real, masks, prediction), True),
            "l1": l1_loss(prediction, real, weights),
            "log_mse": log_mse_loss(prediction, real, weights),
            "edge": edge_loss(prediction, real),
            "ssim": ssim_loss(prediction, real),
        }
        terms["g_loss"] = self.config.loss_weights.total(terms)
        terms["loss"] = terms["g_loss"]
        return terms

    def _discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Mean of the real and fake discriminator losses."""
        return 0.5 * (self._adversarial(real, True) + self._adversarial(fake, False))

    def losses(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generator terms of one batch ("loss" = "g_loss"); zeros when no image has a hole (hole_context)."""
        views = self._views(images, masks)
        if views is None:
            zero = images.new_zeros(())
            return {name: zero for name in (*LOSS_TERMS, "g_loss", "loss")}
        return self._generator_terms(*views)

    def networks(self) -> tuple[str, ...]:
        return ("generator", "discriminator")

    def make_optimizers(
        self, build: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
    ) -> dict[str, torch.optim.Optimizer]:
        """One optimiser per network, so D and G steps stay separate."""
        return {
            "generator": build(self.generator.parameters()),
            "discriminator": build(self.discriminator.parameters()),
        }

    def training_step(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        optimizers: dict[str, torch.optim.Optimizer],
        scaler: torch.amp.GradScaler | None = None,
    ) -> dict[str, float]:
        """One discriminator step, then one generator step (discriminator frozen)."""
        views = self._views(images, masks)
        if views is None:  # hole_context and no hole in the batch: nothing to learn from
            return {name: 0.0 for name in (*LOSS_TERMS, "g_loss", "loss", "d_loss")}
        real, crop_masks, channel, prediction = views
        fake = composite(real, crop_masks, prediction)

        optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss = self._discriminator_loss(real, fake.detach())
        optimise(d_loss, optimizers["discriminator"], scaler)

        optimizers["generator"].zero_grad(set_to_none=True)
        self.discriminator.requires_grad_(False)  # the generator step must not move D
        try:
            terms = self._generator_terms(real, crop_masks, channel, prediction)
        finally:
            self.discriminator.requires_grad_(True)
        optimise(terms["loss"], optimizers["generator"], scaler)
        return {**{name: value.item() for name, value in terms.items()}, "d_loss": d_loss.item()}


def _crop_view(crops: HoleCrops) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images, holes, mask channel) of hole crops: channel 0 is the hole, the last the generator's mask input."""
    return crops.images, crops.masks[:, :1], crops.masks[:, -1:]
