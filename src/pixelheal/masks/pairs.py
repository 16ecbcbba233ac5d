"""Masks recovered from (original, occluded) image pairs: the "from_pairs" kind of `masks.generator`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pixelheal.config import require

KIND = "from_pairs"
CHUNK = 256  # images per step, so memory-mapped sets are never fully loaded


@dataclass(frozen=True)
class FromPairsConfig:
    """A pixel is a hole where any channel of the pair differs by more than `threshold` (of 255)."""

    threshold: int = 10

    def __post_init__(self) -> None:
        require(0 <= self.threshold < 255, "threshold", f"must lie in [0, 254], got {self.threshold!r}")


def masks_from_pairs(originals: np.ndarray, occluded: np.ndarray, threshold: int = 10) -> np.ndarray:
    """N×C×H×W uint8 pairs -> N×1×H×W uint8 mask, 1 where any channel differs by > threshold."""
    _check_pairs(originals, occluded)
    FromPairsConfig(threshold)  # the range check, also for direct calls
    n, _, height, width = originals.shape
    masks = np.empty((n, 1, height, width), np.uint8)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        # int16 so the difference of two uint8 values cannot wrap around
        diff = np.abs(originals[start:stop].astype(np.int16) - occluded[start:stop].astype(np.int16))
        masks[start:stop, 0] = diff.max(axis=1) > threshold  # (B, H, W): max over channels
    return masks


def _check_pairs(originals: np.ndarray, occluded: np.ndarray) -> None:
    """Both arrays must be N×C×H×W uint8 of identical shape."""
    for name, array in (("originals", originals), ("occluded", occluded)):
        if not isinstance(array, np.ndarray) or array.ndim != 4:
            shape = getattr(array, "shape", type(array).__name__)
            raise ValueError(f"masks_from_pairs: {name} must be an N×C×H×W array, got {shape}")
        if array.dtype != np.uint8:
            raise ValueError(f"masks_from_pairs: {name} must be uint8, got {array.dtype}")
    if originals.shape != occluded.shape:
        raise ValueError(
            f"masks_from_pairs: originals {originals.shape} and occluded {occluded.shape} "
            "differ in shape; every occluded image must match its original"
        )
