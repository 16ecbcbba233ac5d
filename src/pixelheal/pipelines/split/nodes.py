"""Nodes of the split pipeline."""

from __future__ import annotations

import logging

import pandas as pd

from pixelheal.data.split import split_indices

logger = logging.getLogger(__name__)


def make_splits(
    metadata: pd.DataFrame, fractions: dict[str, float], seed: int, stratify: bool, official_test: bool
) -> dict[str, list[int]]:
    """Train / val / test image ids."""
    splits = split_indices(metadata, fractions, seed=seed, stratify=stratify, official_test=official_test)
    logger.info("split sizes: %s", {name: len(ids) for name, ids in splits.items()})
    return splits
