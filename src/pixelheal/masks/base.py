"""The mask-generator interface and the checks shared by every generator.

contract: a mask is a uint8 array with 1 = hole (missing), 0 = known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from pixelheal.config import require

GENERATOR_BLOCK = "masks.generator"  # where a generator block is read from unless the caller says otherwise


@runtime_checkable
class MaskGenerator(Protocol):
    """Draws one (1, H, W) uint8 mask in {0, 1} (1 = hole) from an explicit rng."""

    name: str

    def __call__(
        self,
        height: int,
        width: int,
        rng: np.random.Generator,
        image: np.ndarray | None = None,
    ) -> np.ndarray:
        """Return a (1, height, width) uint8 mask; `image` is the C×H×W uint8 image."""
        ...


@runtime_checkable
class BatchMaskGenerator(MaskGenerator, Protocol):
    """A generator that is faster on a batch of images (e.g. a segmentation network)."""

    def generate_batch(self, images: np.ndarray, rngs: Sequence[np.random.Generator]) -> tuple[np.ndarray, list[str]]:
        """Return (N×1×H×W uint8 masks, per-image name of the generator actually used)."""
        ...


def require_in(key: str, value: float, low: float, high: float) -> None:
    """Range check of a declared parameter in `__post_init__` (its type was checked by `parse`)."""
    require(low <= value <= high, key, f"must lie in [{low}, {high}], got {value!r}")


def check_size(kind: str, height: int, width: int) -> None:
    """Reject non-positive or non-integer mask sizes."""
    for param, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"masks.{kind}.{param}: must be a positive integer, got {value!r}")


def check_image(kind: str, image: np.ndarray, height: int, width: int) -> None:
    """Check that `image` is a C×H×W uint8 array of the requested size."""
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        raise ValueError(f"masks.{kind}: image must be a C×H×W array, got {_describe(image)}")
    if image.shape[1:] != (height, width):
        raise ValueError(
            f"masks.{kind}: image is {image.shape[1]}x{image.shape[2]} but a {height}x{width} mask was requested"
        )
    if image.dtype != np.uint8:
        raise ValueError(f"masks.{kind}: image must be uint8, got {image.dtype}")


def _describe(array: object) -> str:
    """Short description of an array-like for error messages."""
    shape = getattr(array, "shape", None)
    return f"shape {shape}" if shape is not None else type(array).__name__
