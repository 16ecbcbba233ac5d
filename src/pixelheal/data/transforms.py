"""Turn any PIL image into the project's image contract: uint8 C×H×W, RGB or gray.

Conversions (documented once, here):
- transparency (RGBA, LA, PA, palette or L/RGB with a transparent colour) is composited onto
  WHITE, the background a viewer shows and what scanned or drawn images assume;
- 16-bit and 32-bit integer images ("I;16", "I;16B", "I;16L", "I") are scaled linearly from
  0..65535 to 0..255 (rounded; values outside 0..65535 are clipped first);
- float images ("F") are taken as 0..1 when their largest value is <= 1, else as 0..255
  (clipped); NaN becomes 0;
- CMYK, YCbCr, HSV, ... go through Pillow's own conversion to RGB;
- resizing uses Pillow's BICUBIC filter, which widens its support when shrinking, so it
  antialiases large reductions too (no separate LANCZOS path is needed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image

from pixelheal.config import parse, require

logger = logging.getLogger(__name__)

PREPROCESSING_BLOCK = "data_processing.preprocessing"  # where the block is read from unless told otherwise
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


@dataclass(frozen=True)
class Preprocessing:
    """How every image becomes the processed array (the `data_processing.preprocessing` block).

    `image_size` is a side (a square) or [height, width]; `center_crop` is a square of a fraction
    (0, 1] of the shorter side (a float), of a side in pixels (an int), or None; `color_mode` is
    "RGB" or "L"; `binarize` is a threshold in [0, 1] giving 0/255 images, or None.
    """

    image_size: int | tuple[int, int]
    center_crop: int | float | None = None
    color_mode: Literal["RGB", "L"] = "RGB"
    binarize: float | None = None

    def __post_init__(self) -> None:
        require(min(self.size) >= 1, "image_size", f"must be positive, got {self.image_size!r}")
        if isinstance(self.center_crop, int):
            require(self.center_crop >= 1, "center_crop", f"{self.center_crop} px must be at least 1")
        elif self.center_crop is not None:
            require(
                0.0 < self.center_crop <= 1.0,
                "center_crop",
                f"as a fraction must be in (0, 1], got {self.center_crop!r} (use an int for a size in pixels)",
            )
        if self.binarize is not None:
            require(0.0 <= self.binarize <= 1.0, "binarize", f"must be a threshold in [0, 1], got {self.binarize!r}")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the processed images."""
        if isinstance(self.image_size, int):
            return self.image_size, self.image_size
        height, width = self.image_size
        return height, width

    @property
    def channels(self) -> int:
        """Number of channels the color mode produces."""
        return 3 if self.color_mode == "RGB" else 1


def preprocessing_config(block: Any, where: str = PREPROCESSING_BLOCK) -> Preprocessing:
    """The checked preprocessing block; every error is a ValueError naming `<where>.<key>`."""
    return parse(Preprocessing, block, where)


def _composite_on_white(img: Image.Image) -> Image.Image:
    """Flatten an image with alpha onto a white background (L or RGB result)."""
    target = "LA" if img.mode in ("LA", "La") else "RGBA"
    arr = np.asarray(img.convert(target), dtype=np.uint32)  # (H, W, C+1), straight alpha
    color, alpha = arr[..., :-1], arr[..., -1:]
    # Integer rounding of color*a/255 + 255*(1 - a/255): exact and platform-independent.
    flat = (color * alpha + 255 * (255 - alpha) + 127) // 255
    flat = flat.astype(np.uint8)
    return Image.fromarray(flat[..., 0] if target == "LA" else flat)


def _sixteen_bit_to_l(img: Image.Image) -> Image.Image:
    """Scale a 16/32-bit integer gray image from 0..65535 to 8-bit L."""
    arr = np.clip(np.asarray(img).astype(np.int64), 0, 65535)
    # contract: 16-bit full scale is 65535 -> 255; rounding keeps the map proportional.
    return Image.fromarray(((arr * 255 + 32767) // 65535).astype(np.uint8))


def _float_to_l(img: Image.Image) -> Image.Image:
    """Map a float image (0..1 or 0..255, see module docstring) to 8-bit L."""
    arr = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0)
    scale = 255.0 if arr.size and arr.max() <= 1.0 else 1.0
    return Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8))


def to_8bit(img: Image.Image) -> Image.Image:
    """Any PIL image -> mode "L" or "RGB" (see module docstring for the rules)."""
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_l(img)
    if mode == "F":
        return _float_to_l(img)
    if mode in _ALPHA_MODES or "transparency" in img.info:
        return _composite_on_white(img)
    if mode == "L":
        return img
    if mode == "1":
        return img.convert("L")
    try:
        return img.convert("RGB")
    except ValueError as exc:
        raise ValueError(f"unsupported image mode {mode!r}: {exc}") from exc


def _center_crop(img: Image.Image, center_crop: float | int | None) -> Image.Image:
    """Square centre crop: a fraction (0, 1] of the shorter side (float), or a side in pixels (int)."""
    if center_crop is None:
        return img
    short = min(img.size)
    if isinstance(center_crop, int):
        side = center_crop
        if side > short:
            raise ValueError(
                f"{PREPROCESSING_BLOCK}.center_crop: {side} px exceeds the image's shorter side ({short} px)"
            )
    else:
        side = max(1, round(center_crop * short))
    width, height = img.size
    left, top = (width - side) // 2, (height - side) // 2
    return img.crop((left, top, left + side, top + side))


def prepare(img: Image.Image, config: Preprocessing) -> np.ndarray:
    """Convert, centre-crop, resize (and optionally binarize) one image -> uint8 C×H×W."""
    height, width = config.size
    img = to_8bit(img)
    if img.mode != config.color_mode:
        img = img.convert(config.color_mode)  # L -> RGB replicates; RGB -> L uses ITU-R 601-2 luma
    img = _center_crop(img, config.center_crop)
    if img.size != (width, height):
        img = img.resize((width, height), resample=Image.Resampling.BICUBIC)  # PIL takes (W, H)
    arr = np.asarray(img, dtype=np.uint8)  # (H, W) for L, (H, W, 3) for RGB
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (C, H, W)
    if config.binarize is not None:
        # contract: binarized pixels are exactly 0 or 255 (>= threshold*255 -> 255).
        arr = np.where(arr >= config.binarize * 255, 255, 0).astype(np.uint8)
    return np.ascontiguousarray(arr)


def prepare_image(
    img: Image.Image,
    image_size: int | tuple[int, int],
    center_crop: float | int | None = None,
    color_mode: str = "RGB",
    binarize: float | None = None,
) -> np.ndarray:
    """`prepare` with the preprocessing parameters given one by one (checked as the block is)."""
    block = {"image_size": image_size, "center_crop": center_crop, "color_mode": color_mode, "binarize": binarize}
    return prepare(img, preprocessing_config(block))
