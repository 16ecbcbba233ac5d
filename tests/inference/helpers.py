"""Tiny checkpoints, images, masks and folders for the inference, app and inpaint-pipeline tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pixelheal.models import make_model
from pixelheal.models.checkpoint import Checkpoint, save_checkpoint


def tiny_checkpoint(
    in_channels: int = 3,
    image_size: tuple[int, int] = (16, 16),
    arch: str = "unet_frm",
    hparams: dict | None = None,
) -> Checkpoint:
    """A randomly initialised tiny checkpoint (unet_frm unless `arch` / `hparams` say otherwise), as the train node returns it."""
    torch.manual_seed(0)
    hparams = ({"widths": [4, 8, 16]} if hparams is None else hparams) | {"in_channels": in_channels}
    return Checkpoint(
        arch=arch,
        hparams=hparams,
        model=make_model(arch, **hparams).state_dict(),
        epoch=1,
        metrics={"epoch": 1, "val_psnr": 10.0},
        history=[{"epoch": 1, "val_psnr": 10.0}],
        training={"epochs": 1},
        image_size=image_size,
    )


def write_checkpoint(path: Path, in_channels: int = 3, image_size: tuple[int, int] = (16, 16), **kind: Any) -> Path:
    """`tiny_checkpoint` saved at `path`; `kind`: its `arch` and `hparams`."""
    save_checkpoint(tiny_checkpoint(in_channels, image_size, **kind), path)
    return path


def random_image(rng: np.random.Generator, height: int, width: int, channels: int = 3) -> Image.Image:
    values = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(values[..., 0] if channels == 1 else values)


def box_mask(height: int, width: int) -> np.ndarray:
    """An (H, W) uint8 mask, 1 = hole, over a box in the upper middle."""
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4 : height // 2, width // 3 : 2 * width // 3] = 1
    return mask


def make_folder(root: Path, names: dict[str, tuple[int, int]], masks: bool = True) -> tuple[Path, Path]:
    """Images (random RGB of the given (H, W)) and matching box masks (255 = hole) under `root`."""
    rng = np.random.default_rng(0)
    for name, (height, width) in names.items():
        image_path, mask_path = root / "images" / name, (root / "masks" / name).with_suffix(".png")
        image_path.parent.mkdir(parents=True, exist_ok=True)
        random_image(rng, height, width).save(image_path)
        if masks:
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(box_mask(height, width) * 255).save(mask_path)
    return root / "images", root / "masks"


def checksums(*folders: Path) -> dict[str, str]:
    """sha256 of every file under `folders` (a file itself when one is a file), by path."""
    files = [p for folder in folders for p in ([folder] if folder.is_file() else sorted(folder.rglob("*")))]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}
