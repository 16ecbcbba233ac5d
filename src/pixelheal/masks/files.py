"""Mask files drawn by people: pictures with 255 = hole, 0 = known, turned into 0/1 masks (1 = hole).

Values other than 0 and 255 (the anti-aliased edges drawing tools paint by default) are
thresholded at 128 with one warning naming the file, rather than refused: the intent of a
soft-edged stroke is unambiguous, and refusing would force a re-export. Masks with no value at or
above 128 (e.g. a 0/1 mask saved as PNG), empty masks and masks covering the whole image are
refused, as their intent is not. Transparent pixels count as known, so strokes painted on a
transparent layer are the hole.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from pixelheal.data.records import read_image

logger = logging.getLogger(__name__)

_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L")


def mask_values(image: Image.Image) -> np.ndarray:
    """The (H, W) uint8 intensities of a mask picture; transparent pixels count as 0 (known)."""
    if image.mode in _SIXTEEN_BIT_MODES:
        # A 16-bit mask may hold 0/255 or 0/65535 for the same intent: only the latter is rescaled.
        values = np.asarray(image).astype(np.float64)
        return np.round(values * (255 / 65535 if values.max() > 255 else 1.0)).astype(np.uint8)
    if "A" in image.getbands() or "transparency" in image.info:
        black = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, image.convert("RGBA"))
    return np.asarray(image.convert("L"))


def binarize_mask(values: np.ndarray, source: str, warn: bool = True) -> np.ndarray:
    """Map 0/255 intensities to a 0/1 mask (1 = hole); see the module docstring for soft edges."""
    values = np.asarray(values)
    soft = (values != 0) & (values != 255)
    if soft.any():
        if values.max() < 128:
            raise ValueError(
                f"{source}: mask has no value >= 128 (max {int(values.max())}); mask files use 255 = hole, 0 = known"
            )
        if warn:
            logger.warning(
                "%s: %d mask pixel(s) are neither 0 nor 255 (anti-aliased?); thresholded at 128",
                source,
                int(soft.sum()),
            )
    mask = (values >= 128).astype(np.uint8)  # contract: 1 = hole
    if not mask.any():
        raise ValueError(f"{source}: mask is empty (no 255 = hole pixel); nothing to inpaint")
    if mask.all():
        raise ValueError(f"{source}: mask covers the whole image; no known pixel to inpaint from")
    return mask


def read_mask(path: str | Path, warn: bool = True) -> np.ndarray:
    """A mask file (255 = hole) as a binary (H, W) uint8 array with 1 = hole."""
    return binarize_mask(mask_values(read_image(path)), str(path), warn)
