"""What every image source yields, and the one way sources read image files."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from PIL import Image

logger = logging.getLogger(__name__)

ON_ERROR_CHOICES = ("raise", "skip")


class ImageReadError(ValueError):
    """An image file that cannot be opened or fully decoded; the message names the file."""


@dataclass(frozen=True)
class ImageRecord:
    """One image as read from a source, with where it came from."""

    image: Image.Image
    source: str
    label: str
    subset: str
    paired: Image.Image | None = None


@runtime_checkable
class ImageSource(Protocol):
    """A sized, re-iterable collection of image records.

    Sources that can skip unreadable files (``on_error="skip"``) also expose a
    ``skipped: list[str]`` attribute, refilled on every iteration.
    """

    def __len__(self) -> int:
        """Number of records an iteration yields at most (cheap: no decoding)."""
        ...

    def __iter__(self) -> Iterator[ImageRecord]:
        """Yield the records in a deterministic order."""
        ...


def check_on_error(on_error: str) -> str:
    """Validate the ``on_error`` parameter."""
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
    return on_error


def read_image(path: str | Path) -> Image.Image:
    """Open and fully decode one image file, raising ImageReadError naming it."""
    try:
        with Image.open(path) as img:
            # Decode now: Image.open is lazy, and truncated files only fail on load().
            img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"cannot read image file {path}: {exc}") from exc
    return img


def read_or_skip(path: Path, on_error: str, skipped: list[str]) -> Image.Image | None:
    """Read ``path``; on_error="skip" turns a failure into one warning, ``skipped`` and None."""
    try:
        return read_image(path)
    except ImageReadError as exc:
        if on_error == "raise":
            raise
        logger.warning("Skipping unreadable image: %s", exc)
        skipped.append(str(path))
        return None
