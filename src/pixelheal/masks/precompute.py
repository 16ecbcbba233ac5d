"""Precompute one seeded mask per image into a memory-mapped .npy file."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from pixelheal.data.scratch import scratch_file
from pixelheal.masks.base import MaskGenerator

logger = logging.getLogger(__name__)


@dataclass
class MaskSet:
    """Precomputed masks and where each came from.

    `masks` is a np.memmap over a temporary .npy file (path: `masks.filename`); the caller
    owns that file: move or copy it to keep it, delete it when done.
    """

    masks: np.ndarray  # N×1×H×W uint8, 1 = hole
    hole_fraction: np.ndarray  # (N,) float32
    generator: list[str]  # per image: name of the generator that produced the mask


def precompute_masks(
    images: np.ndarray,
    generator: MaskGenerator,
    seed: int,
    batch_size: int = 64,
    progress: bool = True,
) -> MaskSet:
    """One mask per image; image i always uses np.random.default_rng([seed, i])."""
    _check_inputs(images, seed, batch_size)
    path = str(scratch_file("masks"))
    try:
        masks, used = _fill(path, images, generator, seed, batch_size, progress)
    except BaseException:
        # nothing half-written: the caller never saw this file, so remove it
        os.remove(path)
        raise
    hole_fraction = masks.reshape(len(masks), -1).mean(axis=1, dtype=np.float64).astype(np.float32)
    _log_fallbacks(generator.name, used)
    return MaskSet(masks=masks, hole_fraction=hole_fraction, generator=used)


def _fill(
    path: str, images: np.ndarray, generator: MaskGenerator, seed: int, batch_size: int, progress: bool
) -> tuple[np.memmap, list[str]]:
    """Write every image's mask into a new .npy memmap at `path`."""
    n, _, height, width = images.shape
    masks = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 1, height, width))
    used: list[str] = []
    batched = callable(getattr(generator, "generate_batch", None))
    step = batch_size if batched else 1
    with tqdm(total=n, desc=f"masks ({generator.name})", unit="img", disable=not progress) as bar:
        for start in range(0, n, step):
            stop = min(start + step, n)
            # per-image rngs make the result independent of batch_size
            rngs = [np.random.default_rng([seed, i]) for i in range(start, stop)]
            chunk, names = _generate(generator, images[start:stop], rngs, batched)
            masks[start:stop] = chunk
            used.extend(names)
            bar.update(stop - start)
    masks.flush()
    return masks, used


def _generate(
    generator: MaskGenerator, images: np.ndarray, rngs: list[np.random.Generator], batched: bool
) -> tuple[np.ndarray, list[str]]:
    """Masks (B×1×H×W uint8) and generator names for one chunk of images."""
    height, width = images.shape[2:]
    if batched:
        chunk, names = generator.generate_batch(images, rngs)
    else:
        chunk = np.stack([generator(height, width, rng, image=image) for image, rng in zip(images, rngs)])
        names = [generator.name] * len(images)
    if chunk.shape != (len(images), 1, height, width) or chunk.dtype != np.uint8:
        raise ValueError(
            f"mask generator {generator.name!r} returned {chunk.dtype} {chunk.shape}; expected "
            f"uint8 {(len(images), 1, height, width)}"
        )
    return chunk, list(names)


def _check_inputs(images: np.ndarray, seed: int, batch_size: int) -> None:
    """Reject inputs that would produce an empty, mis-shaped or unseeded mask set."""
    if not isinstance(images, np.ndarray) or images.ndim != 4 or len(images) == 0:
        shape = getattr(images, "shape", type(images).__name__)
        raise ValueError(f"precompute_masks: images must be a non-empty N×C×H×W array, got {shape}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"precompute_masks: seed must be an integer >= 0, got {seed!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"precompute_masks: batch_size must be an integer >= 1, got {batch_size!r}")


def _log_fallbacks(name: str, used: list[str]) -> None:
    """One INFO line per fallback generator that replaced `name` on some images."""
    for other, count in Counter(used).items():
        if other != name:
            logger.info("%s: %d/%d images used fallback %r", name, count, len(used), other)
