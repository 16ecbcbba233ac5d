"""Checks on the images a user uploads to the app: each refusal names the upload and the reason.

Gradio decodes uploads itself and reports a failure as a bare "Error"; the page calls these
checks first (byte size, then pixel count from the header, before any decoding) and turns a
decoding failure into the same kind of message. No UI imports, so they are tested as plain functions.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

MB = 1_000_000
MEGAPIXEL = 1_000_000


class UploadError(ValueError):
    """An upload the app refuses; the message starts with the component and names the file."""


@dataclass(frozen=True)
class UploadLimits:
    """The largest upload the app accepts: in bytes (as sent) and in pixels (as decoded)."""

    max_mb: float = 20.0
    max_megapixels: float = 40.0

    def __post_init__(self) -> None:
        for option, value in (("--max-upload-mb", self.max_mb), ("--max-megapixels", self.max_megapixels)):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{option}: must be a positive finite number, got {value}")

    @property
    def max_bytes(self) -> int:
        """The byte limit, also handed to Gradio so that the browser refuses larger files early."""
        return int(self.max_mb * MB)


def _size_of(data: bytes | str | Path) -> int:
    return len(data) if isinstance(data, bytes) else os.path.getsize(data)


def check_upload(data: bytes | str | Path, what: str, limits: UploadLimits, name: str | None = None) -> None:
    """Refuse an upload that is too large, not an image, or has too many pixels, reading only its header.

    ``data`` is the uploaded file (a path) or its bytes; ``what`` names the page's component
    ("image", "mask") and ``name`` the file as the user knows it.
    """
    name = name or ("the upload" if isinstance(data, bytes) else Path(data).name)
    with refusals(what, name):
        size = _size_of(data)
        if size > limits.max_bytes:
            raise UploadError(
                f"{what}: {name} is {size / MB:.1f} MB, over the {limits.max_mb:g} MB upload limit (--max-upload-mb)"
            )
        # Image.open reads the header only: the pixel count is known before any pixel is decoded.
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            width, height = image.size
    if width * height > limits.max_megapixels * MEGAPIXEL:
        raise UploadError(
            f"{what}: {name} is {width}x{height} pixels, over the {limits.max_megapixels:g}-megapixel "
            "limit (--max-megapixels)"
        )


@contextmanager
def refusals(what: str, name: str) -> Iterator[None]:
    """Turn a failure to open or decode an upload inside the block into one UploadError saying why."""
    try:
        yield
    except UploadError:
        raise
    except Image.DecompressionBombError as error:
        raise UploadError(f"{what}: {name} has too many pixels to decode safely ({error})") from None
    except UnidentifiedImageError:
        raise UploadError(
            f"{what}: {name} is not an image file this app can read (PNG, JPEG, WebP, BMP, TIFF, GIF)"
        ) from None
    except FileNotFoundError:
        raise UploadError(
            f"{what}: {name} is no longer on the server (uploads are deleted after a while); upload it again"
        ) from None
    except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt data
        raise UploadError(f"{what}: {name} cannot be decoded as an image ({error})") from None
