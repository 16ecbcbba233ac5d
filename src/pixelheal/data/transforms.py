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
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

COLOR_MODES = ("RGB", "L")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def parse_image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    """``image_size`` as (height, width): an int means a square."""
    if isinstance(image_size, Integral) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif isinstance(image_size, (Sequence, np.ndarray)) and not isinstance(image_size, str):
        size = tuple(image_size)
        valid = len(size) == 2 and all(
            isinstance(v, Integral) and not isinstance(v, bool) for v in size
        )
        if not valid:
            raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}")
        size = (int(size[0]), int(size[1]))
    else:
        raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}")
    if min(size) < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return size


def check_color_mode(color_mode: str) -> str:
    """Validate ``color_mode`` ("RGB" or "L")."""
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {COLOR_MODES}, got {color_mode!r}")
    return color_mode


def channels_of(color_mode: str) -> int:
    """Number of channels a color mode produces."""
    return 3 if check_color_mode(color_mode) == "RGB" else 1


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


def center_crop_image(img: Image.Image, center_crop: float | int | None) -> Image.Image:
    """Square centre crop: a fraction (0, 1] of the shorter side, or a side in pixels."""
    if center_crop is None:
        return img
    short = min(img.size)
    if isinstance(center_crop, Integral) and not isinstance(center_crop, bool):
        side = int(center_crop)
        if not 1 <= side <= short:
            raise ValueError(
                f"center_crop={side} px must be between 1 and the image's shorter side ({short} px)"
            )
    elif isinstance(center_crop, Real) and not isinstance(center_crop, bool):
        if not 0.0 < float(center_crop) <= 1.0:
            raise ValueError(
                f"center_crop as a fraction must be in (0, 1], got {center_crop!r} "
                "(use an int for a size in pixels)"
            )
        side = max(1, round(float(center_crop) * short))
    else:
        raise ValueError(f"center_crop must be a fraction, an int or None, got {center_crop!r}")
    width, height = img.size
    left, top = (width - side) // 2, (height - side) // 2
    return img.crop((left, top, left + side, top + side))


def check_binarize(binarize: float | None) -> float | None:
    """Validate the ``binarize`` threshold (in [0, 1] or None)."""
    if binarize is None:
        return None
    if isinstance(binarize, bool) or not isinstance(binarize, Real) or not 0 <= binarize <= 1:
        raise ValueError(f"binarize must be a threshold in [0, 1] or None, got {binarize!r}")
    return float(binarize)


def prepare_image(
    img: Image.Image,
    image_size: int | tuple[int, int],
    center_crop: float | int | None = None,
    color_mode: str = "RGB",
    binarize: float | None = None,
) -> np.ndarray:
    """Convert, centre-crop, resize (and optionally binarize) one image -> uint8 C×H×W."""
    height, width = parse_image_size(image_size)
    check_color_mode(color_mode)
    threshold = check_binarize(binarize)
    img = to_8bit(img)
    if img.mode != color_mode:
        img = img.convert(color_mode)  # L -> RGB replicates; RGB -> L uses ITU-R 601-2 luma
    img = center_crop_image(img, center_crop)
    if img.size != (width, height):
        img = img.resize((width, height), resample=Image.Resampling.BICUBIC)  # PIL takes (W, H)
    arr = np.asarray(img, dtype=np.uint8)  # (H, W) for L, (H, W, 3) for RGB
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (C, H, W)
    if threshold is not None:
        # contract: binarized pixels are exactly 0 or 255 (>= threshold*255 -> 255).
        arr = np.where(arr >= threshold * 255, 255, 0).astype(np.uint8)
    return np.ascontiguousarray(arr)
