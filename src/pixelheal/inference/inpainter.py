"""Inpaint user images of any size with a trained checkpoint: resize in, inpaint, resize back, composite.

Images are *resized* (not tiled) to the checkpoint's training size, inpainted there, and the
completion is resized back and composited at the original resolution, so every known pixel of an
output is bit-identical to its input. An image of any mode is first converted exactly as training
ingestion converts it (`pixelheal.data.transforms.to_8bit`, then the model's colour mode), so a
16-bit or transparent file means the same pixels to the model here as in its training set.
Masks follow the project polarity: pictures use 255 = hole (see `pixelheal.masks.files`), arrays 1 = hole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixelheal.config import ConfigError
from pixelheal.data.transforms import to_8bit
from pixelheal.devices import resolve_device
from pixelheal.masks.files import binarize_mask, mask_values
from pixelheal.models import ARCHITECTURES, InpaintingModel, from_checkpoint, read_checkpoint


@dataclass(frozen=True)
class Inpainter:
    """A ready model plus what inpainting user images needs: its training size and colour mode."""

    model: InpaintingModel
    arch: str
    image_size: tuple[int, int]  # (H, W) the model was trained at
    channels: int
    device: torch.device

    @property
    def mode(self) -> str:
        """The PIL mode images are converted to before inpainting."""
        return "L" if self.channels == 1 else "RGB"

    def convert(self, image: Image.Image) -> Image.Image:
        """`image` (any PIL mode) in this model's mode, by the conversion training ingestion applies."""
        image = to_8bit(image)
        return image if image.mode == self.mode else image.convert(self.mode)


def resolve_checkpoint(model: str, models_dir: str | Path) -> Path:
    """An architecture key (→ `<models_dir>/<key>.pt`) or a checkpoint path, checked to exist."""
    if model in ARCHITECTURES:
        path = Path(models_dir) / f"{model}.pt"
        if not path.is_file():
            raise ConfigError(
                "model",
                f"no checkpoint for architecture {model!r} at {path}; "
                f"train it first with `kedro run --pipeline=train_{model}`",
            )
        return path
    path = Path(model)
    if path.is_file():
        return path
    raise ConfigError(
        "model",
        f"{model!r} is neither an architecture ({', '.join(sorted(ARCHITECTURES))}) nor an existing checkpoint file",
    )


def load_inpainter(checkpoint_path: str | Path, device: str = "cpu", where: str = "device") -> Inpainter:
    """Rebuild the model of a checkpoint file, on `device` ("auto" picks one), with its training image size.

    `where` is the parameter an unusable device is reported as (e.g. `inpaint.device`).
    """
    target = resolve_device(device, where=where)  # before reading: a device error should not wait on a big file
    checkpoint = read_checkpoint(checkpoint_path)
    return Inpainter(
        model=from_checkpoint(checkpoint).to(target),
        arch=checkpoint.arch,
        image_size=checkpoint.image_size,
        channels=checkpoint.channels,
        device=target,
    )


def image_array(image: Image.Image) -> np.ndarray:
    """An L or RGB picture as a (C, H, W) uint8 array."""
    values = np.asarray(image)
    return values[None] if values.ndim == 2 else values.transpose(2, 0, 1)  # (C, H, W)


def array_image(values: np.ndarray) -> Image.Image:
    """A (C, H, W) uint8 array as an L or RGB picture."""
    return Image.fromarray(values[0] if values.shape[0] == 1 else values.transpose(1, 2, 0))


def as_mask(mask: np.ndarray | Image.Image, size: tuple[int, int], source: str) -> np.ndarray:
    """A binary (H, W) mask from a picture (255 = hole) or an array (0/1 or 0/255), checked against `size` (W, H)."""
    values = mask_values(mask) if isinstance(mask, Image.Image) else np.asarray(mask)
    values = values.squeeze()
    if values.max(initial=0) <= 1:
        values = np.round(values.astype(np.float64) * 255).astype(np.uint8)  # an array in the 1 = hole contract
    if values.shape != (size[1], size[0]):
        raise ValueError(f"{source}: mask is {values.shape[1]}x{values.shape[0]} but the image is {size[0]}x{size[1]}")
    return binarize_mask(values, source)


def _resize(images: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize (B, C, h, w) floats: area averaging when only shrinking (no ringing), else antialiased bicubic."""
    h, w = images.shape[-2:]
    if (h, w) == tuple(size):
        return images
    if size[0] <= h and size[1] <= w:
        return F.interpolate(images, size=tuple(size), mode="area")
    return F.interpolate(images, size=tuple(size), mode="bicubic", align_corners=False, antialias=True)


def _model_inputs(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Image (C, H, W) uint8 and mask (H, W) 0/1 → model-size float image and binary mask."""
    x = torch.tensor(image, dtype=torch.float32).div(255)[None]  # (1, C, H, W), contract: [0, 1]
    m = torch.tensor(mask, dtype=torch.float32)[None, None]  # (1, 1, H, W), contract: 1 = hole
    # A model pixel is a hole when any hole pixel enters its resampling footprint, so damaged
    # content under the hole never leaks into the known context the model sees.
    small_mask = (_resize(m, size).abs() > 1e-6).float()  # (1, 1, h, w)
    return _resize(x, size).clamp(0, 1)[0], small_mask[0]


def _composite_back(prediction: torch.Tensor, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Resize a model-size prediction (C, h, w) back to (C, H, W) and take only its hole pixels."""
    up = _resize(prediction[None].float().cpu(), image.shape[-2:])[0].clamp(0, 1)  # (C, H, W)
    filled = up.mul(255).round().to(torch.uint8).numpy()
    # Compositing in uint8 keeps every known pixel bit-identical to the input.
    return np.where(mask[None].astype(bool), filled, image)  # (C, H, W) uint8


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch for sampling without disturbing the caller's global random state."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def inpaint_batch(
    inpainter: Inpainter, images: list[np.ndarray], masks: list[np.ndarray], n_samples: int, seed: int
) -> list[list[np.ndarray]]:
    """Completions of images (C, H, W) uint8 of any sizes in the model's mode, with masks (H, W) 1 = hole.

    Returns, per image, a list of (C, H, W) uint8 samples (one for deterministic architectures).
    """
    pairs = [_model_inputs(image, mask, inpainter.image_size) for image, mask in zip(images, masks)]
    x = torch.stack([p[0] for p in pairs]).to(inpainter.device)  # (B, C, h, w)
    m = torch.stack([p[1] for p in pairs]).to(inpainter.device)  # (B, 1, h, w)
    with _seeded(seed, inpainter.device), torch.no_grad():
        if n_samples == 1:
            samples = [inpainter.model.inpaint(x, m)]
        else:
            samples = inpainter.model.inpaint_samples(x, m, n_samples)
    return [[_composite_back(s[i], image, mask) for s in samples] for i, (image, mask) in enumerate(zip(images, masks))]


def inpaint_samples(
    inpainter: Inpainter, image: Image.Image, mask: np.ndarray | Image.Image, n_samples: int = 1, seed: int = 0
) -> list[Image.Image]:
    """Completions of one image at its own size; deterministic architectures return one."""
    image = inpainter.convert(image)
    binary = as_mask(mask, image.size, "mask")
    (samples,) = inpaint_batch(inpainter, [image_array(image)], [binary], n_samples, seed)
    return [array_image(sample) for sample in samples]


def inpaint_image(
    inpainter: Inpainter, image: Image.Image, mask: np.ndarray | Image.Image, seed: int = 0
) -> Image.Image:
    """One completion of `image` (any size) where `mask` is a hole; known pixels are unchanged."""
    return inpaint_samples(inpainter, image, mask, 1, seed)[0]
