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


def read_first_frame(path: str | Path) -> tuple[Image.Image, bool]:
    """Open and fully decode the first frame of one image file, and whether the file holds more frames.

    Raises ImageReadError naming the file.
    """
    try:
        with Image.open(path) as img:
            # Asked before load(): answering it seeks, and the file is closed once the block ends.
            more_frames = bool(getattr(img, "is_animated", False))
            # Decode now: Image.open is lazy, and truncated files only fail on load().
            img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"cannot read image file {path}: {exc}") from exc
    return img, more_frames


def read_image(path: str | Path) -> Image.Image:
    """Open and fully decode one image file (its first frame), raising ImageReadError naming it."""
    return read_first_frame(path)[0]


class ReadLog:
    """One pass of reading a source's files: skips unreadable ones if asked, notes multi-frame ones.

    ``skipped`` is the list a source exposes as its ``skipped`` attribute; call :meth:`finish` once
    the pass ends, so multi-frame files get one warning rather than one per file.
    """

    def __init__(self, on_error: str) -> None:
        self.on_error = on_error
        self.skipped: list[str] = []
        self.multi_frame: list[str] = []

    def read(self, path: Path) -> Image.Image | None:
        """Read ``path``; on_error="skip" turns a failure into one warning, ``skipped`` and None."""
        try:
            image, more_frames = read_first_frame(path)
        except ImageReadError as exc:
            if self.on_error == "raise":
                raise
            logger.warning("Skipping unreadable image: %s", exc)
            self.skipped.append(str(path))
            return None
        if more_frames:
            self.multi_frame.append(str(path))
        return image

    def finish(self) -> None:
        """Warn once about the multi-frame files read in this pass."""
        if self.multi_frame:
            logger.warning(
                "Used only the first frame of %d multi-frame file(s) (animations or multi-page images), e.g. %s",
                len(self.multi_frame),
                self.multi_frame[0],
            )
