"""Seeded train / val / test splits, stratified by label when labels exist."""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


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
    if (
        set(fractions) != set(SPLITS)
        or any(v < 0 for v in fractions.values())
        or not np.isclose(sum(fractions.values()), 1)
    ):
        raise ValueError(f"split.fractions must give train, val and test fractions summing to 1, got {fractions}")
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
    return {name: sorted(int(i) for i in values) for name, values in result.items()}
