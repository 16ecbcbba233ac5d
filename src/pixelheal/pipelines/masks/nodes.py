"""Nodes of the masks pipeline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from pixelheal.evaluation.grids import image_grid
from pixelheal.masks import (
    FromPairsConfig,
    build_mask_generator,
    mask_generator_config,
    masks_from_pairs,
    precompute_masks,
)


def compute_masks(
    images: np.ndarray, paired_images: np.ndarray, generator: dict[str, Any], seed: int, batch_size: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """One mask per image from the configured generator, with each mask's hole fraction."""
    config = mask_generator_config(generator, "masks.generator", pairs=True)
    if isinstance(config, FromPairsConfig):
        if len(paired_images) != len(images):
            raise ValueError(
                "masks.generator.kind: 'from_pairs' needs a paired_folders source (data_processing.source.kind)"
            )
        masks = masks_from_pairs(images, paired_images, config.threshold)
        fraction, used = masks.reshape(len(masks), -1).mean(1), ["from_pairs"] * len(masks)
    else:
        mask_set = precompute_masks(images, build_mask_generator(config), seed=seed, batch_size=batch_size)
        masks, fraction, used = mask_set.masks, mask_set.hole_fraction, mask_set.generator
    metadata = pd.DataFrame({"id": np.arange(len(masks)), "hole_fraction": np.round(fraction, 6), "generator": used})
    return masks, metadata


def preview_masks(images: np.ndarray, masks: np.ndarray, count: int) -> Image.Image:
    """A grid of the first `count` images with their holes blanked (white)."""
    shown = np.where(masks[:count].astype(bool), np.uint8(255), images[:count])
    return image_grid(shown)
