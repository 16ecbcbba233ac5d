"""LaMa-style irregular masks: random walks of thick brush strokes plus optional boxes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from pixelheal.config import require
from pixelheal.masks.base import check_size, require_in

KIND = "irregular"
REFERENCE_SIDE = 256  # presets are defined at this side, as LaMa's *_256 configs are


@dataclass(frozen=True)
class StrokePreset:
    """Stroke statistics in pixels at REFERENCE_SIDE; scaled by min(H, W) / 256."""

    width: tuple[float, float]  # brush thickness range
    length: tuple[float, float]  # segment length range
    max_vertices: int  # segments per stroke are drawn in [1, max_vertices]
    strokes: tuple[int, int]  # stroke count range (not scaled)
    max_turn: float  # radians the walk may turn at each vertex
    box_side: tuple[float, float]  # side range of the optional rectangles


# Loosely after LaMa's random_{thin,medium,thick}_256 configs.
PRESETS: dict[str, StrokePreset] = {
    "thin": StrokePreset((3, 12), (10, 50), 5, (4, 40), math.pi / 2, (5, 30)),
    "medium": StrokePreset((8, 40), (10, 90), 5, (3, 5), math.pi / 2, (10, 50)),
    "thick": StrokePreset((24, 72), (20, 140), 4, (1, 4), math.pi / 2, (30, 150)),
}

# An op is ("line", x0, y0, x1, y1, thickness) or ("box", top, left, bottom, right).
_Op = tuple


@dataclass(frozen=True)
class IrregularMaskGenerator:
    """Random brush-stroke masks whose hole fraction always lies in [min, max].

    The generator is its own declared parameters: `parse(IrregularMaskGenerator, block, where)`
    checks and builds it. `preset` is one of PRESETS; up to `max_boxes` rectangles are added;
    `max_tries` candidates are drawn before the closest one is grown or shrunk into range.
    """

    name: ClassVar[str] = KIND

    preset: str = "medium"
    min_hole_fraction: float = 0.0
    max_hole_fraction: float = 0.5
    max_boxes: int = 0
    max_tries: int = 20

    def __post_init__(self) -> None:
        require(self.preset in PRESETS, "preset", f"expected one of {sorted(PRESETS)}, got {self.preset!r}")
        require_in("min_hole_fraction", self.min_hole_fraction, 0.0, 1.0)
        require_in("max_hole_fraction", self.max_hole_fraction, 0.0, 1.0)
        require(self.max_hole_fraction > 0.0, "max_hole_fraction", "must be > 0 (else every mask is empty)")
        require(
            self.min_hole_fraction <= self.max_hole_fraction,
            "min_hole_fraction",
            f"{self.min_hole_fraction} exceeds max_hole_fraction {self.max_hole_fraction}",
        )
        require(self.max_boxes >= 0, "max_boxes", f"must be >= 0, got {self.max_boxes!r}")
        require(self.max_tries >= 1, "max_tries", f"must be >= 1, got {self.max_tries!r}")

    def __call__(
        self, height: int, width: int, rng: np.random.Generator, image: np.ndarray | None = None
    ) -> np.ndarray:
        """Return a (1, H, W) uint8 mask (1 = hole); `image` is ignored."""
        check_size(KIND, height, width)
        low, high = self._count_limits(height, width)
        best_ops, best_mask, best_gap = None, None, math.inf
        for _ in range(self.max_tries):
            ops = self._sample_ops(height, width, rng)
            mask = _render(ops, height, width)
            count = int(mask.sum())
            gap = max(low - count, count - high, 0)
            if gap == 0:
                return mask[None]
            if gap < best_gap:
                best_ops, best_mask, best_gap = ops, mask, gap
        if int(best_mask.sum()) > high:
            return _shrink(best_ops, height, width, low, high)[None]
        return _grow(best_mask, low, high, rng)[None]

    def _count_limits(self, height: int, width: int) -> tuple[int, int]:
        """Hole pixel-count limits for this size; raise if no count fits."""
        area = height * width
        # the epsilon keeps e.g. 0.25 * 64 * 64 from rounding away from an exact count
        low = math.ceil(self.min_hole_fraction * area - 1e-9)
        high = math.floor(self.max_hole_fraction * area + 1e-9)
        if low > high:
            raise ValueError(
                f"masks.{KIND}.min_hole_fraction: no hole size between {self.min_hole_fraction} and "
                f"max_hole_fraction {self.max_hole_fraction} exists at {height}x{width}"
            )
        return low, high

    def _sample_ops(self, height: int, width: int, rng: np.random.Generator) -> list[_Op]:
        """Draw the strokes (and boxes) of one candidate mask."""
        preset = PRESETS[self.preset]
        scale = min(height, width) / REFERENCE_SIDE
        ops: list[_Op] = []
        for _ in range(int(rng.integers(preset.strokes[0], preset.strokes[1] + 1))):
            ops.extend(_stroke(preset, scale, height, width, rng))
        for _ in range(int(rng.integers(0, self.max_boxes + 1))):
            side_lo, side_hi = (_scaled(s, scale) for s in preset.box_side)
            box_h = min(int(rng.integers(side_lo, side_hi + 1)), height)
            box_w = min(int(rng.integers(side_lo, side_hi + 1)), width)
            ops.append(_box_op(box_h, box_w, height, width, rng))
        return ops


def _scaled(pixels_at_reference: float, scale: float) -> int:
    """Scale a reference-size length to this image, never below 1 px."""
    return max(1, round(pixels_at_reference * scale))


def _stroke(preset: StrokePreset, scale: float, height: int, width: int, rng: np.random.Generator) -> list[_Op]:
    """One random walk of thick line segments."""
    x, y = int(rng.integers(width)), int(rng.integers(height))
    angle = rng.uniform(0.0, 2.0 * math.pi)
    thickness = int(rng.integers(_scaled(preset.width[0], scale), _scaled(preset.width[1], scale) + 1))
    ops: list[_Op] = []
    for _ in range(int(rng.integers(1, preset.max_vertices + 1))):
        angle += rng.uniform(-preset.max_turn, preset.max_turn)
        length = rng.uniform(_scaled(preset.length[0], scale), _scaled(preset.length[1], scale))
        # clipping (as LaMa does) keeps the walk inside the image
        x1 = int(np.clip(round(x + length * math.cos(angle)), 0, width - 1))
        y1 = int(np.clip(round(y + length * math.sin(angle)), 0, height - 1))
        ops.append(("line", x, y, x1, y1, thickness))
        x, y = x1, y1
    return ops


def _box_op(box_h: int, box_w: int, height: int, width: int, rng: np.random.Generator) -> _Op:
    """A box of the given size at a uniform position inside the image."""
    top = int(rng.integers(0, height - box_h + 1))
    left = int(rng.integers(0, width - box_w + 1))
    return ("box", top, left, top + box_h, left + box_w)


def _draw(mask: np.ndarray, op: _Op) -> None:
    """Draw one op into the (H, W) uint8 mask in place."""
    if op[0] == "box":
        _, top, left, bottom, right = op
        mask[top:bottom, left:right] = 1
        return
    _, x0, y0, x1, y1, thickness = op
    cv2.line(mask, (x0, y0), (x1, y1), 1, thickness)
    if thickness > 2:
        # round joints, so that a turning walk has no notches
        cv2.circle(mask, (x1, y1), thickness // 2, 1, -1)


def _render(ops: list[_Op], height: int, width: int) -> np.ndarray:
    """Draw all ops into a fresh (H, W) uint8 mask."""
    mask = np.zeros((height, width), np.uint8)
    for op in ops:
        _draw(mask, op)
    return mask


def _shrink(ops: list[_Op], height: int, width: int, low: int, high: int) -> np.ndarray:
    """Drop trailing ops until the hole has at most `high` pixels, then trim pixels."""
    mask = np.zeros((height, width), np.uint8)
    counts = []
    for op in ops:
        _draw(mask, op)
        counts.append(int(mask.sum()))
    # counts never decrease (union of shapes); keep the longest prefix that fits
    keep = int(np.searchsorted(counts, high, side="right"))
    if keep > 0 and counts[keep - 1] >= low:
        return _render(ops[:keep], height, width)
    return fit_count(_render(ops[: keep + 1], height, width), high)


def _grow(mask: np.ndarray, low: int, high: int, rng: np.random.Generator) -> np.ndarray:
    """Add a box so the hole reaches a random count in [low, high], then fix pixels."""
    height, width = mask.shape
    target = int(rng.integers(low, high + 1))
    need = max(target - int(mask.sum()), 1)
    aspect = rng.uniform(0.5, 2.0)
    box_h = int(np.clip(round(math.sqrt(need * aspect)), 1, height))
    box_w = int(np.clip(math.ceil(need / box_h), 1, width))
    mask = mask.copy()
    _draw(mask, _box_op(box_h, box_w, height, width, rng))
    return fit_count(mask, int(np.clip(mask.sum(), low, high)))


def fit_count(mask: np.ndarray, target: int) -> np.ndarray:
    """Deterministically add/remove pixels so that exactly `target` are holes.

    Removes the hole pixels farthest from the hole's centroid, or adds the known pixels
    nearest to it, so the result stays one compact blob rather than scattered noise.
    """
    flat = mask.reshape(-1).copy()
    count = int(flat.sum())
    if count == target:
        return mask
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    cy, cx = (ys.mean(), xs.mean()) if count else ((height - 1) / 2, (width - 1) / 2)
    yy, xx = np.indices((height, width))
    dist = ((yy - cy) ** 2 + (xx - cx) ** 2).reshape(-1)
    if count > target:
        holes = np.flatnonzero(flat)
        order = holes[np.argsort(-dist[holes], kind="stable")]
        flat[order[: count - target]] = 0
    else:
        known = np.flatnonzero(flat == 0)
        order = known[np.argsort(dist[known], kind="stable")]
        flat[order[: target - count]] = 1
    return flat.reshape(height, width)
