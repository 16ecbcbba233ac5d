"""Inpaint your own images with a trained checkpoint: any size in, the same size out.

Images are *resized* (not tiled) to the checkpoint's training size, inpainted there, and the
completion is resized back and composited at the original resolution, so every known pixel of an
output is bit-identical to its input. Masks follow the project polarity everywhere: PNG files use
255 = hole, 0 = known; arrays use 1 = hole, 0 = known.

Mask files with values other than 0 and 255 (the anti-aliased edges that drawing tools paint by
default) are thresholded at 128 with one warning naming the file, rather than refused: the intent
of a soft-edged stroke is unambiguous, and refusing would force a re-export. Masks with no value at
or above 128 (e.g. a 0/1 mask saved as PNG), empty masks and masks covering the whole image are
refused, as their intent is not.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixelheal.models import ARCHITECTURES, InpaintingModel, from_checkpoint, read_checkpoint
from pixelheal.training import resolve_device

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MAX_LISTED = 20  # problems listed in one error message before "... and N more"


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


def resolve_checkpoint(model: str, models_dir: str | Path) -> Path:
    """An architecture key (→ `<models_dir>/<key>.pt`) or a checkpoint path, checked to exist."""
    if model in ARCHITECTURES:
        path = Path(models_dir) / f"{model}.pt"
        if not path.is_file():
            raise ValueError(f"model: no checkpoint for architecture {model!r} at {path}; "
                             f"train it first with `kedro run --pipeline=train_{model}`")
        return path
    path = Path(model)
    if path.is_file():
        return path
    raise ValueError(f"model: {model!r} is neither an architecture ({', '.join(sorted(ARCHITECTURES))}) "
                     f"nor an existing checkpoint file")


def load_inpainter(checkpoint_path: str | Path, device: str = "cpu") -> Inpainter:
    """Rebuild the model of a checkpoint file with its training image size."""
    checkpoint = read_checkpoint(checkpoint_path)
    if "image_size" not in checkpoint:
        raise ValueError(f"{checkpoint_path} does not record its training image_size; retrain it to inpaint with it")
    height, width = (int(v) for v in checkpoint["image_size"])
    target = resolve_device(device)
    return Inpainter(model=from_checkpoint(checkpoint).to(target), arch=str(checkpoint["arch"]),
                     image_size=(height, width), channels=int(checkpoint["hparams"].get("in_channels", 3)),
                     device=target)


def read_image(path: str | Path, mode: str) -> Image.Image:
    """Decode an image file fully and convert it to `mode` ("RGB" or "L"); 16-bit input is reduced to 8 bits."""
    try:
        with Image.open(path) as opened:
            image = opened.copy()  # forces a full decode, so a truncated file fails here
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        values = np.asarray(image).astype(np.float64)
        scale = 255 / 65535 if values.max() > 255 else 1.0
        image = Image.fromarray(np.round(values * scale).astype(np.uint8), mode="L")
    return image.convert(mode)


def mask_values(image: Image.Image) -> np.ndarray:
    """The (H, W) uint8 intensities of a mask picture; transparent pixels count as 0 (known)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        values = np.asarray(image).astype(np.float64)
        return np.round(values * (255 / 65535 if values.max() > 255 else 1.0)).astype(np.uint8)
    if "A" in image.getbands() or "transparency" in image.info:
        black = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, image.convert("RGBA"))
    return np.asarray(image.convert("L"))


def binarize_mask(values: np.ndarray, source: str, warn: bool = True) -> np.ndarray:
    """Map 0/255 intensities to a 0/1 mask (1 = hole); see the module docstring for soft edges."""
    values = np.asarray(values)
    soft = (values != 0) & (values != 255)
    if soft.any():
        if values.max() < 128:
            raise ValueError(f"{source}: mask has no value >= 128 (max {int(values.max())}); "
                             "mask files use 255 = hole, 0 = known")
        if warn:
                logger.warning("%s: %d mask pixel(s) are neither 0 nor 255 (anti-aliased?); thresholded at 128",
                           source, int(soft.sum()))
    mask = (values >= 128).astype(np.uint8)  # contract: 1 = hole
    if not mask.any():
        raise ValueError(f"{source}: mask is empty (no 255 = hole pixel); nothing to inpaint")
    if mask.all():
        raise ValueError(f"{source}: mask covers the whole image; no known pixel to inpaint from")
    return mask


def read_mask(path: str | Path, warn: bool = True) -> np.ndarray:
    """A mask file (255 = hole) as a binary (H, W) uint8 array with 1 = hole."""
    try:
        with Image.open(path) as opened:
            image = opened.copy()
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"{path}: not a readable mask image ({error})") from None
    return binarize_mask(mask_values(image), str(path), warn)


def _as_mask(mask: np.ndarray | Image.Image, size: tuple[int, int], source: str) -> np.ndarray:
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


def _to_array(image: Image.Image) -> np.ndarray:
    values = np.asarray(image)
    return values[None] if values.ndim == 2 else values.transpose(2, 0, 1)  # (C, H, W)


def _to_image(values: np.ndarray) -> Image.Image:
    return Image.fromarray(values[0] if values.shape[0] == 1 else values.transpose(1, 2, 0))


def _inpaint_batch(inpainter: Inpainter, images: list[np.ndarray], masks: list[np.ndarray],
                   n_samples: int, seed: int) -> list[list[np.ndarray]]:
    """Completions of same-mode images of any sizes: per image, a list of (C, H, W) uint8 samples."""
    pairs = [_model_inputs(image, mask, inpainter.image_size) for image, mask in zip(images, masks)]
    x = torch.stack([p[0] for p in pairs]).to(inpainter.device)  # (B, C, h, w)
    m = torch.stack([p[1] for p in pairs]).to(inpainter.device)  # (B, 1, h, w)
    with _seeded(seed, inpainter.device), torch.no_grad():
        if n_samples == 1:
            samples = [inpainter.model.inpaint(x, m)]
        else:
            samples = inpainter.model.inpaint_samples(x, m, n_samples)
    return [[_composite_back(s[i], image, mask) for s in samples] for i, (image, mask) in enumerate(zip(images, masks))]


def inpaint_samples(inpainter: Inpainter, image: Image.Image, mask: np.ndarray | Image.Image,
                    n_samples: int = 1, seed: int = 0) -> list[Image.Image]:
    """Completions of one image at its own size; deterministic architectures return one."""
    image = image.convert(inpainter.mode)
    binary = _as_mask(mask, image.size, "mask")
    (samples,) = _inpaint_batch(inpainter, [_to_array(image)], [binary], n_samples, seed)
    return [_to_image(sample) for sample in samples]


def inpaint_image(inpainter: Inpainter, image: Image.Image, mask: np.ndarray | Image.Image,
                  seed: int = 0) -> Image.Image:
    """One completion of `image` (any size) where `mask` is a hole; known pixels are unchanged."""
    return inpaint_samples(inpainter, image, mask, 1, seed)[0]


def _raise_listed(headline: str, problems: list[str]) -> None:
    if problems:
        listed = problems[:MAX_LISTED]
        if len(problems) > MAX_LISTED:
            listed.append(f"... and {len(problems) - MAX_LISTED} more")
        raise ValueError(f"{headline}:\n  " + "\n  ".join(listed))


def list_images(images_dir: str | Path) -> list[Path]:
    """Every image file under `images_dir` (recursively, hidden files skipped), sorted."""
    root = Path(images_dir)
    if not root.is_dir():
        raise ValueError(f"images_dir: {root} is not a folder")
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not found:
        raise ValueError(f"images_dir: {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    stems: dict[Path, list[str]] = {}
    for path in found:
        stems.setdefault(path.relative_to(root).with_suffix(""), []).append(path.name)
    _raise_listed(f"images_dir: {root} has images that would share one mask and one output name",
                  [f"{stem}: {', '.join(names)}" for stem, names in stems.items() if len(names) > 1])
    return found


def pair_masks(images_dir: str | Path, masks_dir: str | Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs: `a/b.jpg` ↔ `<masks_dir>/a/b.png`, or one mask file for every image."""
    images, root, masks = list_images(images_dir), Path(images_dir), Path(masks_dir)
    if masks.is_file():
        return [(image, masks) for image in images]
    if not masks.is_dir():
        raise ValueError(f"masks_dir: {masks} is neither a folder nor a mask file")
    pairs = [(image, masks / image.relative_to(root).with_suffix(".png")) for image in images]
    missing = [str(image) for image, mask in pairs if not mask.is_file()]
    _raise_listed(f"masks_dir: {masks} lacks the mask (<relative path>.png, 255 = hole) of {len(missing)} image(s)", missing)
    return pairs


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as opened:
            return opened.size
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None


def validate_pairs(pairs: list[tuple[Path, Path]]) -> None:
    """Check every mask is binary and matches its image's size, before anything is written."""
    problems: list[str] = []
    shapes: dict[Path, tuple[int, int] | None] = {}  # a mask file shared by every image is read (and reported) once
    for image, mask_path in pairs:
        if mask_path not in shapes:
            try:
                shapes[mask_path] = read_mask(mask_path).shape
            except ValueError as error:
                shapes[mask_path] = None
                problems.append(str(error))
        try:
            size = _image_size(image)
        except ValueError as error:
            problems.append(str(error))
            continue
        if shapes[mask_path] is None:
            continue
        height, width = shapes[mask_path]
        if size != (width, height):
            problems.append(f"{mask_path}: mask is {width}x{height} but its image {image} is {size[0]}x{size[1]}")
    _raise_listed(f"{len(problems)} image/mask problem(s); nothing was written", problems)


def _check_output_dir(output_dir: Path, images_dir: Path, masks_dir: Path) -> None:
    """Refuse an output folder that would overwrite inputs or be read as input by the next run."""
    out = output_dir.resolve()
    if out == masks_dir.resolve() or out.is_relative_to(images_dir.resolve()):
        raise ValueError(f"output_dir: {output_dir} is (inside) an input folder; "
                         "choose another so no input is overwritten")


def inpaint_folder(inpainter: Inpainter, images_dir: str | Path, masks_dir: str | Path, output_dir: str | Path,
                   batch_size: int = 16, seed: int = 0) -> list[Path]:
    """Inpaint every image under `images_dir`; write `<output_dir>/<relative path>.png`; return those paths.

    Everything is validated first and the outputs are written to a temporary folder beside
    `output_dir`, then moved in, so a failure leaves `output_dir` untouched.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: must be at least 1, got {batch_size}")
    root, out = Path(images_dir), Path(output_dir)
    pairs = pair_masks(root, masks_dir)
    _check_output_dir(out, root, Path(masks_dir))
    validate_pairs(pairs)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        written = _inpaint_pairs(inpainter, pairs, root, staging, batch_size, seed)
        for relative in written:  # every output exists: now move them in
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / relative, out / relative)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("inpainted %d image(s) into %s", len(written), out)
    return [out / relative for relative in written]


def _inpaint_pairs(inpainter: Inpainter, pairs: list[tuple[Path, Path]], root: Path, staging: Path,
                   batch_size: int, seed: int) -> list[Path]:
    """Inpaint the pairs batch by batch into `staging`; return the written paths relative to it."""
    written: list[Path] = []
    shared: dict[Path, np.ndarray] = {}  # one entry: a single mask file for every image is read once
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start:start + batch_size]
        images = [_to_array(read_image(image, inpainter.mode)) for image, _ in batch]
        masks = []
        for _, mask in batch:
            if mask not in shared:
                shared = {mask: read_mask(mask, warn=False)}  # validate_pairs already warned
            masks.append(shared[mask])
        # A distinct seed per batch, so sampling architectures do not repeat one noise pattern.
        outputs = _inpaint_batch(inpainter, images, masks, 1, seed + start)
        for (image, _), (result,) in zip(batch, outputs):
            relative = image.relative_to(root).with_suffix(".png")
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            _to_image(result).save(staging / relative)
            written.append(relative)
        logger.info("inpainted %d/%d image(s)", len(written), len(pairs))
    return written
