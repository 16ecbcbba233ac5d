"""The mask-generator interface and the checks shared by every generator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


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

    def generate_batch(
        self, images: np.ndarray, rngs: Sequence[np.random.Generator]
    ) -> tuple[np.ndarray, list[str]]:
        """Return (N×1×H×W uint8 masks, per-image name of the generator actually used)."""
        ...


def param_error(kind: str, param: str, message: str) -> ValueError:
    """Build the ValueError for an invalid generator parameter, named as in the config."""
    return ValueError(f"masks.{kind}.{param}: {message}")


def check_size(kind: str, height: int, width: int) -> None:
    """Reject non-positive or non-integer mask sizes."""
    for param, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise param_error(kind, param, f"must be a positive integer, got {value!r}")


def check_fraction(kind: str, param: str, value: float, low: float = 0.0, high: float = 1.0) -> float:
    """Return `value` as float if it lies in [low, high], else raise naming `param`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise param_error(kind, param, f"must be a number in [{low}, {high}], got {value!r}")
    if not low <= float(value) <= high:
        raise param_error(kind, param, f"must lie in [{low}, {high}], got {value!r}")
    return float(value)


def check_image(kind: str, image: np.ndarray, height: int, width: int) -> None:
    """Check that `image` is a C×H×W uint8 array of the requested size."""
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        raise ValueError(f"masks.{kind}: image must be a C×H×W array, got {_describe(image)}")
    if image.shape[1:] != (height, width):
        raise ValueError(
            f"masks.{kind}: image is {image.shape[1]}x{image.shape[2]} but a "
            f"{height}x{width} mask was requested"
        )
    if image.dtype != np.uint8:
        raise ValueError(f"masks.{kind}: image must be uint8, got {image.dtype}")


def _describe(array: object) -> str:
    """Short description of an array-like for error messages."""
    shape = getattr(array, "shape", None)
    return f"shape {shape}" if shape is not None else type(array).__name__
