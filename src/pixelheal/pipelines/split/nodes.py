"""Nodes of the split pipeline."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from pixelheal.config import to_block
from pixelheal.data.split import split_config, split_indices

logger = logging.getLogger(__name__)


def make_splits(metadata: pd.DataFrame, split: dict[str, Any]) -> dict[str, list[int]]:
    """Train / val / test image ids; an impossible `split` block is refused before anything is written."""
    config = split_config(split)
    splits = split_indices(
        metadata,
        to_block(config.fractions),
        seed=config.seed,
        stratify=config.stratify,
        official_test=config.official_test,
    )
    logger.info("split sizes: %s", {name: len(ids) for name, ids in splits.items()})
    return splits
