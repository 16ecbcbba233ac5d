"""Classical (non-learned) inpainting baselines scored alongside the architectures.

contract: images uint8 N×C×H×W (C = 1 or 3); masks uint8 N×1×H×W with 1 = hole.
Results are composited: known pixels are returned unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import cv2
import numpy as np
from skimage.restoration import inpaint_biharmonic

logger = logging.getLogger(__name__)

TELEA_RADIUS = 3  # px neighbourhood considered by Telea's fast-marching method


def _telea(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Telea fast-marching inpainting of an (H, W, C) uint8 image; hole is (H, W) bool."""
    filled = cv2.inpaint(image, hole.astype(np.uint8), TELEA_RADIUS, cv2.INPAINT_TELEA)
    return filled.reshape(image.shape)  # cv2 drops the channel axis of 1-channel images


def _biharmonic(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Biharmonic-equation inpainting of an (H, W, C) uint8 image; hole is (H, W) bool."""
    # skimage works on floats in [0, 1]; one channel is passed as 2-D (no channel axis)
    source = image.astype(np.float64) / 255.0
    if image.shape[2] == 1:
        filled = inpaint_biharmonic(source[:, :, 0], hole)[:, :, None]
    else:
        filled = inpaint_biharmonic(source, hole, channel_axis=-1)
    return np.clip(np.rint(filled * 255.0), 0, 255).astype(np.uint8)


BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "telea": _telea,
    "biharmonic": _biharmonic,
}


def _inpaint_one(kind: str, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Inpaint one (C, H, W) image with mask (1, H, W) and composite; returns (C, H, W) uint8."""
    hole = mask[0] > 0  # (H, W)
    if not hole.any():
        return image.copy()
    hwc = np.ascontiguousarray(np.transpose(image, (1, 2, 0)))  # (H, W, C)
    filled = BASELINES[kind](hwc, hole)  # (H, W, C)
    out = np.where(hole[:, :, None], filled, hwc)  # composite: known pixels untouched
    return np.transpose(out, (2, 0, 1))  # (C, H, W)


def _check_inputs(kind: str, images: np.ndarray, masks: np.ndarray) -> None:
    """Raise ValueError for an unknown kind or inputs off the uint8 N×C×H×W contract."""
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline kind {kind!r}; valid kinds: {sorted(BASELINES)}")
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 N×C×H×W with C in (1, 3), got {images.dtype} {images.shape}")
    n, _, h, w = images.shape
    if masks.shape != (n, 1, h, w):
        raise ValueError(f"masks must have shape {(n, 1, h, w)}, got {masks.shape}")
    full = np.flatnonzero((masks > 0).reshape(n, -1).all(axis=1))
    if full.size:
        raise ValueError(f"masks[{full[0]}] covers the whole image: nothing to inpaint from")


def inpaint_baseline(kind: str, images: np.ndarray, masks: np.ndarray, workers: int = 1) -> np.ndarray:
    """Inpaint every image with a classical method; composited uint8 N×C×H×W."""
    images, masks = np.asarray(images), np.asarray(masks)
    _check_inputs(kind, images, masks)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    one = partial(_inpaint_one, kind)
    logger.info("baseline %s: inpainting %d images with %d worker(s)", kind, len(images), workers)
    if workers == 1 or len(images) < 2:
        results = [one(img, m) for img, m in zip(images, masks)]
    else:
        chunk = max(1, len(images) // (4 * workers))  # few large messages, still balanced
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, images, masks, chunksize=chunk))
    if not results:
        return np.empty_like(images)
    return np.stack(results).astype(np.uint8)
