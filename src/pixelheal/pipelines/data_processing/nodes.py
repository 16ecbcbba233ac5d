"""Nodes of the data_processing pipeline."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from pixelheal.data import build_image_set, make_source, preprocessing_config
from pixelheal.evaluation.grids import image_grid

logger = logging.getLogger(__name__)


def ingest_images(source: dict[str, Any], preprocessing: dict[str, Any]) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Read every image of the configured source, cropped and resized to the processed array."""
    config = preprocessing_config(preprocessing)  # checked before any image is read
    image_set = build_image_set(make_source(**source), **dataclasses.asdict(config))
    labels = image_set.metadata["label"].nunique()
    logger.info(
        "ingested %d images of shape %s with %d labels", len(image_set.images), image_set.images.shape[1:], labels
    )
    return image_set.images, image_set.metadata, image_set.paired


def preview_images(images: np.ndarray, count: int) -> Image.Image:
    """A grid of the first `count` processed images."""
    return image_grid(images[:count])
