"""GAN inpainter: a U-Net generator with self-attention and a PatchGAN discriminator (`gan`).

Generator (b = `base_channels`; 4,918,532 parameters at b = 64 with 3 image channels):
    input (C+1, H, W): the masked image in [-1, 1] ++ the mask; hole pixels are 0 (mid grey) or,
    with `hole_fill` smooth / biharmonic, an interpolation that is also the output's prior
    enc1 DoubleConv(C+1 → b) at H, max-pool; enc2 DoubleConv(b → 2b) at H/2, max-pool;
    enc3 DoubleConv(2b → 4b) at H/4, max-pool;
    SelfAttention(4b, query/key 4b/8) at H/8, then the bottleneck DoubleConv(4b → 4b);
    decoder: parameter-free bilinear x2 upsampling (to the skip's size) → concat skip → DoubleConv:
    dec3 (4b+4b → 4b), dec2 (4b+2b → 2b), dec1 (2b+b → b); head 1x1 conv (b → C, zero at init) → tanh, in [-1, 1]
    (with a prior: tanh(head + logit(fill) / 2), so an untrained generator returns the fill).
    (DoubleConv = two 3x3 conv → BatchNorm → ReLU, from `models.blocks`.)
Discriminator (PatchGAN, d = `disc_channels`; 35,553 parameters at d = 32 with 3 channels):
    conv(C → d, 4, s2) → LeakyReLU(0.2) → conv(d → 2d, 4, s2) → BatchNorm → LeakyReLU(0.2)
    → conv(2d → 1, 4): one logit per overlapping patch of its [-1, 1] input.

Variants (`variant`):
    whole_image: the generator sees the whole masked image (the original used base 32 here).
    hole_context (default, the original's main setting): per image, the bounding box of the hole
    grown by a context ring of `context_ring` x the image's shorter side (0.02 = 4 px at 200 px),
    then widened to a square where the image allows (so square holes are not distorted), is
    resized to `crop_size` x `crop_size`; the prediction is resized back into that box and only its
    hole pixels are kept. Images whose mask is empty are returned unchanged.

Training (`training_step`): one discriminator step on real vs composited fake images (the crops in
hole_context), then one generator step with the discriminator frozen, each with its own optimiser.
Generator loss = w_adv * adversarial(D(composited fake) vs real) + w_l1 * L1 + w_edge * Sobel-edge
+ w_ssim * (1 - SSIM), the last three between the raw prediction and the real image in [0, 1]
(pix2pix convention: the known pixels supervise the generator too; `hole_weight` > 1 makes L1 a
weighted mean that counts each hole pixel that many times). Adversarial loss:
BCE-with-logits by default (the original), or least squares ("lsgan").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pixelheal.masks.box import hole_bbox
from pixelheal.models.attention import SelfAttention
from pixelheal.models.base import HOLE_FILLS, InpaintingModel, composite, fill_holes, fill_logit, masked_input
from pixelheal.models.blocks import DoubleConv
from pixelheal.training.losses import ADVERSARIAL_KINDS, adversarial_loss, edge_loss, l1_loss, ssim_loss

VARIANTS = ("whole_image", "hole_context")
LOSS_WEIGHTS = {"adversarial": 1.0, "l1": 100.0, "edge": 10.0, "ssim": 1.0}
# Three max-pools in the generator must leave at least one cell; crops also feed the 3-conv PatchGAN.
MIN_SIDE = 8
MIN_CROP = 16
Box = tuple[int, int, int, int]  # (top, left, bottom, right), end exclusive


class UNetGenerator(nn.Module):
    """Three-stage U-Net with self-attention before the bottleneck; output in [-1, 1]."""

    def __init__(self, in_channels: int, base: int) -> None:
        super().__init__()
        b = base
        self.encoders = nn.ModuleList([DoubleConv(in_channels + 1, b), DoubleConv(b, 2 * b), DoubleConv(2 * b, 4 * b)])
        self.attention = SelfAttention(4 * b)
        self.bottleneck = DoubleConv(4 * b, 4 * b)
        self.decoders = nn.ModuleList([DoubleConv(8 * b, 4 * b), DoubleConv(6 * b, 2 * b), DoubleConv(3 * b, b)])
        self.head = nn.Conv2d(b, in_channels, kernel_size=1)
        # A zero head starts the generator at its prior (mid-grey without one): training learns a correction.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """`x`: masked image in [-1, 1] plus mask; `prior`: pre-tanh logits the head's output is added to."""
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(self.attention(x))  # (B, 4b, H/8, W/8)
        for decoder, skip in zip(self.decoders, reversed(skips)):
            # Upsampling to the skip's exact size keeps odd sides (e.g. 25 → 12 → 25) aligned.
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = decoder(torch.cat([x, skip], dim=1))
        x = self.head(x)
        return torch.tanh(x if prior is None else x + prior)  # (B, C, H, W) in [-1, 1]


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


@dataclass
class HoleCrops:
    """Hole+context crops of the images that have a hole, all resized to one square size."""

    rows: list[int]  # batch index of each crop
    boxes: list[Box]  # where each crop came from
    images: torch.Tensor  # (B', C, S, S) in [0, 1]
    masks: torch.Tensor  # (B', 1, S, S), 1 = hole: every cell a hole pixel contributes to


def square_box(box: Box, height: int, width: int) -> Box:
    """Grow `box` to a square (as far as the image allows) around it, shifted to lie inside the image."""
    top, left, bottom, right = box
    side = max(bottom - top, right - left)
    h, w = min(side, height), min(side, width)
    top = min(max(top - (h - (bottom - top)) // 2, 0), height - h)
    left = min(max(left - (w - (right - left)) // 2, 0), width - w)
    return top, left, top + h, left + w


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize; antialiasing keeps large holes' crops from aliasing when shrunk."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def hole_crops(images: torch.Tensor, masks: torch.Tensor, context_ring: float, size: int) -> HoleCrops | None:
    """Crop each image's hole plus its context ring and resize to `size`; None when no image has a hole."""
    holes = (masks[:, 0] > 0.5).cpu().numpy()  # (B, H, W) bool, 1 = hole
    height, width = holes.shape[1:]
    ring = round(context_ring * min(height, width))
    rows, boxes, crops, crop_masks = [], [], [], []
    for row, hole in enumerate(holes):
        if not hole.any():
            continue  # nothing to inpaint in this image
        top, left, bottom, right = square_box(hole_bbox(hole, ring), height, width)
        rows.append(row)
        boxes.append((top, left, bottom, right))
        crops.append(_resize(images[row : row + 1, :, top:bottom, left:right], (size, size)))
        crop_masks.append(_resize(masks[row : row + 1, :, top:bottom, left:right], (size, size)))
    if not rows:
        return None
    # A cell that any hole pixel feeds is a hole: the generator never sees ground truth through it.
    crop_masks_t = (torch.cat(crop_masks) > 0).to(images.dtype)  # (B', 1, S, S)
    return HoleCrops(rows, boxes, torch.cat(crops), crop_masks_t)


def paste(images: torch.Tensor, crops: HoleCrops, predictions: torch.Tensor) -> torch.Tensor:
    """`images` with each crop's prediction resized back into its box."""
    out = images.clone()
    for row, (top, left, bottom, right), prediction in zip(crops.rows, crops.boxes, predictions):
        out[row, :, top:bottom, left:right] = _resize(prediction[None], (bottom - top, right - left))[0]
    return out


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"gan: {name} must be a positive integer, got {value!r}")


def _check_loss_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """The four loss weights, missing ones at their original values."""
    if not isinstance(weights, Mapping):
        raise ValueError(f"gan: loss_weights must be a mapping of {sorted(LOSS_WEIGHTS)}, got {weights!r}")
    unknown = sorted(set(weights) - set(LOSS_WEIGHTS))
    if unknown:
        raise ValueError(f"gan: loss_weights has unknown terms {unknown}; known: {sorted(LOSS_WEIGHTS)}")
    values = dict(weights)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()):
        raise ValueError(f"gan: loss_weights must be numbers, got {values}")
    merged = {**LOSS_WEIGHTS, **{name: float(value) for name, value in values.items()}}
    if any(value < 0 for value in merged.values()):
        raise ValueError(f"gan: loss_weights must be >= 0, got {dict(weights)}")
    return merged


def _check_hparams(variant: str, context_ring: float, crop_size: int, adversarial: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"gan: variant must be one of {list(VARIANTS)}, got {variant!r}")
    if isinstance(context_ring, bool) or not isinstance(context_ring, (int, float)) or not 0.0 <= context_ring < 0.5:
        raise ValueError(f"gan: context_ring (a fraction of the image's shorter side) must be in [0, 0.5), "
                         f"got {context_ring!r}")
    _check_positive_int("crop_size", crop_size)
    if crop_size < MIN_CROP:
        raise ValueError(f"gan: crop_size must be at least {MIN_CROP}, got {crop_size}")
    if adversarial not in ADVERSARIAL_KINDS:
        raise ValueError(f"gan: adversarial_loss must be one of {list(ADVERSARIAL_KINDS)}, got {adversarial!r}")


class GANInpainter(InpaintingModel):
    """Generator + discriminator in one module, so one state_dict (and checkpoint) holds both."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        variant: str = "hole_context",
        base_channels: int = 64,
        disc_channels: int = 32,
        context_ring: float = 0.02,
        crop_size: int = 40,
        loss_weights: Mapping[str, float] | None = None,
        adversarial_loss: str = "bce",
        hole_weight: float = 1.0,
        hole_fill: str = "zero",
    ) -> None:
        super().__init__()
        for name, value in {"in_channels": in_channels, "base_channels": base_channels, "disc_channels": disc_channels}.items():
            _check_positive_int(name, value)
        _check_hparams(variant, context_ring, crop_size, adversarial_loss)
        self.variant, self.context_ring, self.crop_size = variant, float(context_ring), crop_size
        self.loss_weights = _check_loss_weights(loss_weights if loss_weights is not None else LOSS_WEIGHTS)
        self.adversarial_kind = adversarial_loss
        if isinstance(hole_weight, bool) or not isinstance(hole_weight, (int, float)) or hole_weight < 1:
            raise ValueError(f"gan: hole_weight must be a number >= 1, got {hole_weight!r}")
        # > 1 weights hole pixels up in the L1 term: known pixels are copied through anyway.
        self.hole_weight = float(hole_weight)
        if hole_fill not in HOLE_FILLS:
            raise ValueError(f"gan: hole_fill must be one of {list(HOLE_FILLS)}, got {hole_fill!r}")
        self.hole_fill = hole_fill
        self.generator = UNetGenerator(in_channels, base_channels)
        self.discriminator = PatchDiscriminator(in_channels, disc_channels)

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Full-size prediction in [0, 1]; hole_context predicts inside each hole's box (elsewhere: the image)."""
        if self.variant == "whole_image":
            return self._generate(images, masks)
        crops = hole_crops(images, masks, self.context_ring, self.crop_size)
        if crops is None:
            return images.clone()
        return paste(images, crops, self._generate(crops.images, crops.masks))

    def _generate(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Generator prediction in [0, 1] for images in [0, 1]."""
        if min(images.shape[-2:]) < MIN_SIDE:
            raise ValueError(f"gan: images must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got {tuple(images.shape[-2:])}")
        if self.hole_fill == "zero":
            return (self.generator(masked_input(images * 2 - 1, masks)) + 1) / 2  # hole = 0: mid-grey in [-1, 1]
        filled = fill_holes(images, masks, self.hole_fill)
        x = torch.cat([filled * 2 - 1, masks], dim=1)  # (B, C+1, H, W): interpolated image in [-1, 1] ++ mask
        # tanh(z / 2) = 2 sigmoid(z) - 1: half the fill's logit makes the zero-head generator output the fill.
        return (self.generator(x, fill_logit(filled) / 2) + 1) / 2  # (B, C, H, W) in [0, 1]

    def _views(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """(real, masks, prediction) as the losses see them: whole images or hole crops; None if no hole."""
        if self.variant == "hole_context":
            crops = hole_crops(images, masks, self.context_ring, self.crop_size)
            if crops is None:
                return None
            images, masks = crops.images, crops.masks
        return images, masks, self._generate(images, masks)

    def _discriminate(self, images: torch.Tensor) -> torch.Tensor:
        """Patch logits for images in [0, 1] (the discriminator works in [-1, 1])."""
        return self.discriminator(images * 2 - 1)  # (B, 1, h, w)

    def _generator_terms(self, real: torch.Tensor, masks: torch.Tensor, prediction: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted generator terms; the adversarial one on the composited fake."""
        fake = composite(real, masks, prediction)
        terms = {
            "adversarial": adversarial_loss(self._discriminate(fake), True, self.adversarial_kind),
            "l1": l1_loss(prediction, real, 1 + (self.hole_weight - 1) * masks),
            "edge": edge_loss(prediction, real),
            "ssim": ssim_loss(prediction, real),
        }
        terms["g_loss"] = sum(weight * terms[name] for name, weight in self.loss_weights.items())
        terms["loss"] = terms["g_loss"]
        return terms

    def _discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Mean of the real and fake discriminator losses."""
        return 0.5 * (adversarial_loss(self._discriminate(real), True, self.adversarial_kind)
                      + adversarial_loss(self._discriminate(fake), False, self.adversarial_kind))

    def losses(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generator terms of one batch ("loss" = "g_loss"); zeros when no image has a hole (hole_context)."""
        views = self._views(images, masks)
        if views is None:
            zero = images.new_zeros(())
            return {name: zero for name in (*LOSS_WEIGHTS, "g_loss", "loss")}
        return self._generator_terms(*views)

    def make_optimizers(self, build: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]) -> dict[str, torch.optim.Optimizer]:
        """One optimiser per network, so D and G steps stay separate."""
        return {"generator": build(self.generator.parameters()), "discriminator": build(self.discriminator.parameters())}

    def training_step(self, images: torch.Tensor, masks: torch.Tensor, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        """One discriminator step, then one generator step (discriminator frozen)."""
        views = self._views(images, masks)
        if views is None:  # hole_context and no hole in the batch: nothing to learn from
            return {name: 0.0 for name in (*LOSS_WEIGHTS, "g_loss", "loss", "d_loss")}
        real, crop_masks, prediction = views
        fake = composite(real, crop_masks, prediction)

        optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss = self._discriminator_loss(real, fake.detach())
        d_loss.backward()
        optimizers["discriminator"].step()

        optimizers["generator"].zero_grad(set_to_none=True)
        self.discriminator.requires_grad_(False)  # the generator step must not move D
        try:
            terms = self._generator_terms(real, crop_masks, prediction)
        finally:
            self.discriminator.requires_grad_(True)
        terms["loss"].backward()
        optimizers["generator"].step()
        return {**{name: value.item() for name, value in terms.items()}, "d_loss": d_loss.item()}


def gan(**hparams: Any) -> GANInpainter:
    """The GAN inpainter; keyword-only hyper-parameters as `GANInpainter` (defaults: the original hole+context setting)."""
    return GANInpainter(**hparams)
