"""Rectangular holes placed away from the border (1 = hole)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from pixelheal.config import require
from pixelheal.masks.base import check_size, require_in

KIND = "box"


@dataclass(frozen=True)
class BoxMaskGenerator:
    """One box hole whose sides, margin and context ring are fractions of the image side.

    The generator is its own declared parameters: `parse(BoxMaskGenerator, block, where)` checks
    and builds it. `hole_size` is one fraction or a [min, max] pair; "square" holes use the
    shorter side, "rect" ones draw height and width independently. `margin_from` says what the
    margin separates from the border: "ring" (hole + ring stay `margin` inside the image) or
    "hole" (the GAN original: the hole starts `margin` from the border and the ring lies inside
    the margin, so it must not be wider than it).
    """

    name: ClassVar[str] = KIND

    hole_size: float | tuple[float, float] = (0.25, 0.25)
    aspect: Literal["square", "rect"] = "square"
    margin: float = 0.0
    context_ring: float = 0.0
    margin_from: Literal["ring", "hole"] = "ring"

    def __post_init__(self) -> None:
        low, high = self.hole_range
        require(0.0 < low <= 1.0 and 0.0 < high <= 1.0, "hole_size", f"must lie in (0, 1], got {self.hole_size!r}")
        require(low <= high, "hole_size", f"min exceeds max in {self.hole_size!r}")
        require_in("margin", self.margin, 0.0, 0.5)
        require_in("context_ring", self.context_ring, 0.0, 0.5)
        require(
            self.margin_from == "ring" or self.context_ring <= self.margin,
            "context_ring",
            f"{self.context_ring} is wider than the margin {self.margin}: with margin_from hole "
            "the ring lies inside the margin",
        )
        ring = f" + 2*context_ring {self.context_ring}" if self.margin_from == "ring" else ""
        require(
            high + 2 * self.margin + 2 * self.placed_ring <= 1.0,
            "hole_size",
            f"largest hole {high} + 2*margin {self.margin}{ring} exceeds the image side (1.0)",
        )

    @property
    def placed_ring(self) -> float:
        """The ring kept clear of the border besides the margin: none when the margin holds it ("hole")."""
        return self.context_ring if self.margin_from == "ring" else 0.0

    @property
    def hole_range(self) -> tuple[float, float]:
        """(min, max) hole side as fractions of the image side."""
        if isinstance(self.hole_size, (int, float)):
            return float(self.hole_size), float(self.hole_size)
        low, high = self.hole_size
        return float(low), float(high)

    def __call__(
        self, height: int, width: int, rng: np.random.Generator, image: np.ndarray | None = None
    ) -> np.ndarray:
        """Return a (1, H, W) uint8 mask with one box of ones (the hole); `image` is ignored."""
        check_size(KIND, height, width)
        box_h, box_w = self._sample_size(height, width, rng)
        top = _sample_start(height, box_h, self.margin, self.placed_ring, rng)
        left = _sample_start(width, box_w, self.margin, self.placed_ring, rng)
        mask = np.zeros((1, height, width), np.uint8)
        mask[:, top : top + box_h, left : left + box_w] = 1
        return mask

    def _sample_size(self, height: int, width: int, rng: np.random.Generator) -> tuple[int, int]:
        """Hole height and width in pixels."""
        low, high = self.hole_range
        if self.aspect == "square":
            side = _to_pixels(rng.uniform(low, high), min(height, width))
            return side, side
        return _to_pixels(rng.uniform(low, high), height), _to_pixels(rng.uniform(low, high), width)


def _to_pixels(fraction: float, side: int) -> int:
    """A fraction of `side` in whole pixels, at least 1."""
    return max(1, round(fraction * side))


def _sample_start(side: int, size: int, margin: float, ring: float, rng: np.random.Generator) -> int:
    """Uniform start so that hole + `ring` stays `margin` from both borders."""
    border = round(margin * side) + round(ring * side)
    last = side - border - size
    if last < border:
        # pixel rounding can eat the last pixel or two of a config that fits as fractions
        border = max(0, (side - size) // 2)
        last = side - border - size
    if last < border:
        raise ValueError(f"masks.{KIND}: a {size}-px hole does not fit in a {side}-px image")
    return int(rng.integers(border, last + 1))
