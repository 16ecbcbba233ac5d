"""Rectangular holes placed away from the border, plus the hole+context crop box."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pixelheal.masks.base import check_fraction, check_size, param_error

KIND = "box"
ASPECTS = ("square", "rect")


class BoxMaskGenerator:
    """One box hole whose sides, margin and context ring are fractions of the image side."""

    name = KIND

    def __init__(
        self,
        hole_size: float | Sequence[float] = (0.25, 0.25),
        aspect: str = "square",
        margin: float = 0.0,
        context_ring: float = 0.0,
    ) -> None:
        self.hole_size = _check_hole_size(hole_size)
        if aspect not in ASPECTS:
            raise param_error(KIND, "aspect", f"must be one of {list(ASPECTS)}, got {aspect!r}")
        self.aspect = aspect
        self.margin = check_fraction(KIND, "margin", margin, 0.0, 0.5)
        self.context_ring = check_fraction(KIND, "context_ring", context_ring, 0.0, 0.5)
        if self.hole_size[1] + 2 * self.margin + 2 * self.context_ring > 1.0:
            raise param_error(
                KIND, "hole_size",
                f"largest hole {self.hole_size[1]} + 2*margin {self.margin} + 2*context_ring "
                f"{self.context_ring} exceeds the image side (1.0)",
            )

    def __repr__(self) -> str:
        return (
            f"BoxMaskGenerator(hole_size={self.hole_size}, aspect={self.aspect!r}, "
            f"margin={self.margin}, context_ring={self.context_ring})"
        )

    def __call__(
        self, height: int, width: int, rng: np.random.Generator, image: np.ndarray | None = None
    ) -> np.ndarray:
        """Return a (1, H, W) uint8 mask with one box of ones (the hole); `image` is ignored."""
        check_size(KIND, height, width)
        box_h, box_w = self._sample_size(height, width, rng)
        top = _sample_start(height, box_h, self.margin, self.context_ring, rng)
        left = _sample_start(width, box_w, self.margin, self.context_ring, rng)
        mask = np.zeros((1, height, width), np.uint8)
        mask[:, top : top + box_h, left : left + box_w] = 1
        return mask

    def _sample_size(self, height: int, width: int, rng: np.random.Generator) -> tuple[int, int]:
        """Hole height and width in pixels."""
        low, high = self.hole_size
        if self.aspect == "square":
            side = _to_pixels(rng.uniform(low, high), min(height, width))
            return side, side
        return _to_pixels(rng.uniform(low, high), height), _to_pixels(rng.uniform(low, high), width)


def _check_hole_size(hole_size: float | Sequence[float]) -> tuple[float, float]:
    """Accept one fraction or a (min, max) pair in (0, 1]."""
    pair = (hole_size, hole_size) if np.isscalar(hole_size) else hole_size
    if not isinstance(pair, (Sequence, np.ndarray)) or len(pair) != 2:
        raise param_error(KIND, "hole_size", f"must be a fraction or a [min, max] pair, got {hole_size!r}")
    low, high = (check_fraction(KIND, "hole_size", value) for value in pair)
    if low <= 0.0:
        raise param_error(KIND, "hole_size", f"must be > 0, got {hole_size!r}")
    if low > high:
        raise param_error(KIND, "hole_size", f"min exceeds max in {hole_size!r}")
    return low, high


def _to_pixels(fraction: float, side: int) -> int:
    """A fraction of `side` in whole pixels, at least 1."""
    return max(1, round(fraction * side))


def _sample_start(side: int, size: int, margin: float, ring: float, rng: np.random.Generator) -> int:
    """Uniform start so that hole + ring stays `margin` from both borders."""
    border = round(margin * side) + round(ring * side)
    last = side - border - size
    if last < border:
        # pixel rounding can eat the last pixel or two of a config that fits as fractions
        border = max(0, (side - size) // 2)
        last = side - border - size
    if last < border:
        raise ValueError(f"masks.{KIND}: a {size}-px hole does not fit in a {side}-px image")
    return int(rng.integers(border, last + 1))


def hole_bbox(mask: np.ndarray, ring: int = 0) -> tuple[int, int, int, int]:
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
