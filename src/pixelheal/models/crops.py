"""Hole+context crops: the box around each image's hole, cut out, resized to one size, and pasted back.

The GAN's hole_context variant inpaints these crops instead of whole images. contract: images
(B, C, H, W) in [0, 1], masks (B, K, H, W) with 1 = hole: channel 0 is the hole, which places each
box; further channels (the GAN's hole + ring mask) are cut and resized alongside. Boxes are
(top, left, bottom, right) with the ends exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

Box = tuple[int, int, int, int]  # (top, left, bottom, right), end exclusive


@dataclass
class HoleCrops:
    """Hole+context crops of the images that have a hole, all resized to one square size."""

    rows: list[int]  # batch index of each crop
    boxes: list[Box]  # where each crop came from
    images: torch.Tensor  # (B', C, S, S) in [0, 1]
    masks: torch.Tensor  # (B', K, S, S), 1 = hole: every cell a hole pixel contributes to (per channel)


def hole_bbox(mask: np.ndarray, ring: int = 0) -> Box:
    """(top, left, bottom, right) of the hole grown by `ring` px; end exclusive, clipped."""
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.ndim != 2:
        raise ValueError(f"hole_bbox: mask must be (1, H, W) or (H, W), got shape {mask.shape}")
    if isinstance(ring, bool) or not isinstance(ring, (int, np.integer)) or ring < 0:
        raise ValueError(f"hole_bbox: ring must be an integer >= 0, got {ring!r}")
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("hole_bbox: the mask has no hole (no pixel equals 1)")
    height, width = mask.shape
    top = max(int(rows[0]) - ring, 0)
    left = max(int(cols[0]) - ring, 0)
    bottom = min(int(rows[-1]) + 1 + ring, height)
    right = min(int(cols[-1]) + 1 + ring, width)
    return top, left, bottom, right


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
    """Crop each image's hole plus its context ring and resize to `size`; None when no image has a hole.

    The ring is `context_ring` x the image's shorter side; the box is then made square where the
    image allows, so square holes are not distorted by the resize.
    """
    holes = (masks[:, 0] > 0.5).cpu().numpy()  # (B, H, W) bool, 1 = hole: channel 0 places the boxes
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
    crop_masks_t = (torch.cat(crop_masks) > 0).to(images.dtype)  # (B', K, S, S)
    return HoleCrops(rows, boxes, torch.cat(crops), crop_masks_t)


def paste(images: torch.Tensor, crops: HoleCrops, predictions: torch.Tensor) -> torch.Tensor:
    """`images` with each crop's prediction resized back into its box."""
    out = images.clone()
    for row, (top, left, bottom, right), prediction in zip(crops.rows, crops.boxes, predictions):
        out[row, :, top:bottom, left:right] = _resize(prediction[None], (bottom - top, right - left))[0]
    return out
