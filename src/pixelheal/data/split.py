"""Seeded train / val / test splits, stratified by label when labels exist.

Every split must end up with images: training picks its best epoch on `val` and evaluation scores
`test`, so a split that would leave either empty is refused before anything is trained on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pixelheal.config import parse, require, to_block

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitFractions:
    """The share of the images in each split (with `official_test`, `test` is the source's own)."""

    train: float
    val: float
    test: float

    def __post_init__(self) -> None:
        for name in SPLITS:
            require(getattr(self, name) >= 0, name, f"must be at least 0, got {getattr(self, name)}")
        total = self.train + self.val + self.test
        require(bool(np.isclose(total, 1)), "", f"train, val and test must sum to 1, got {total:g}")
        require(self.train > 0, "train", "must be positive: there is nothing to train on")
        require(self.val > 0, "val", "must be positive: training selects its best epoch on the validation split")


@dataclass(frozen=True)
class SplitConfig:
    """The `split` parameter block."""

    fractions: SplitFractions
    seed: int = 0
    stratify: bool = True  # by label, when the source has labels
    official_test: bool = False  # the source's own test subset is the test split

    def __post_init__(self) -> None:
        require(
            self.official_test or self.fractions.test > 0,
            "fractions.test",
            "must be positive (or official_test: true): evaluation scores the test split",
        )


def split_config(block: Any, where: str = "split") -> SplitConfig:
    """The `split` block checked; every error names `<where>.<key>` (e.g. `split.fractions.test`)."""
    return parse(SplitConfig, block, where)


def _allocate(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """Split `n` items into counts proportional to `fractions` (largest remainders get the rest)."""
    exact = {name: n * fractions[name] for name in SPLITS}
    counts = {name: int(np.floor(value)) for name, value in exact.items()}
    for name in sorted(SPLITS, key=lambda k: counts[k] - exact[k])[: n - sum(counts.values())]:
        counts[name] += 1
    return counts


def split_indices(
    metadata: pd.DataFrame,
    fractions: dict[str, float],
    seed: int = 0,
    stratify: bool = True,
    official_test: bool = False,
) -> dict[str, list[int]]:
    """Image ids per split; with `official_test`, the source's own test subset is the test split."""
    config = split_config({"fractions": fractions, "seed": seed, "stratify": stratify, "official_test": official_test})
    fractions = to_block(config.fractions)
    rng = np.random.default_rng(seed)
    ids = metadata["id"].to_numpy()
    labels = metadata["label"].fillna("").astype(str).to_numpy()
    result: dict[str, list[int]] = {name: [] for name in SPLITS}
    if official_test:
        is_test = metadata["subset"].to_numpy() == "test"
        if not is_test.any():
            raise ValueError("split.official_test is true, but the source has no official test subset")
        result["test"] = sorted(ids[is_test].tolist())
        ids, labels = ids[~is_test], labels[~is_test]
        total = fractions["train"] + fractions["val"]
        fractions = {"train": fractions["train"] / total, "val": fractions["val"] / total, "test": 0.0}
    groups = [labels == label for label in np.unique(labels)] if stratify else [np.ones(len(ids), bool)]
    for group in groups:
        members = rng.permutation(ids[group])
        start = 0
        for name, count in _allocate(len(members), fractions).items():
            result[name].extend(members[start : start + count].tolist())
            start += count
    _require_every_split(result, to_block(config.fractions), len(metadata))
    return {name: sorted(int(i) for i in values) for name, values in result.items()}


def _require_every_split(result: dict[str, list[int]], fractions: dict[str, float], n: int) -> None:
    """Refuse a split that leaves one without images: too few images (or per label) for its fraction."""
    for name in SPLITS:
        if not result[name]:
            raise ValueError(
                f"split.fractions.{name}: {fractions[name]:g} of {n} images leaves the {name} split empty; "
                "raise it, use more images or set split.stratify: false"
            )
