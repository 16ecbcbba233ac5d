"""Train / val / test splits: sizes, stratification, determinism, official test sets, impossible splits refused."""

import numpy as np
import pandas as pd
import pytest

from pixelheal.data.split import split_config, split_indices
from pixelheal.pipelines.split.nodes import make_splits

FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def _metadata(n: int = 1000, labels: int = 10, test: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "label": [f"class{i % labels}" for i in range(n)],
            "subset": ["train"] * (n - test) + ["test"] * test,
        }
    )


def test_sizes_cover_every_image_once():
    splits = split_indices(_metadata(), FRACTIONS)
    assert {k: len(v) for k, v in splits.items()} == {"train": 800, "val": 100, "test": 100}
    ids = splits["train"] + splits["val"] + splits["test"]
    assert sorted(ids) == list(range(1000))


def test_stratified_by_label():
    metadata = _metadata(n=1000, labels=4)
    splits = split_indices(metadata, FRACTIONS)
    for name, expected in (("train", 200), ("val", 25), ("test", 25)):
        counts = metadata.set_index("id").loc[splits[name], "label"].value_counts()
        assert counts.to_dict() == {f"class{i}": expected for i in range(4)}


def test_unstratified_splits_still_have_the_right_sizes():
    splits = split_indices(_metadata(n=101), FRACTIONS, stratify=False)
    assert sum(len(v) for v in splits.values()) == 101
    assert abs(len(splits["train"]) - 80.8) < 1


def test_deterministic_for_a_seed_and_different_across_seeds():
    metadata = _metadata()
    assert split_indices(metadata, FRACTIONS, seed=1) == split_indices(metadata, FRACTIONS, seed=1)
    assert split_indices(metadata, FRACTIONS, seed=1) != split_indices(metadata, FRACTIONS, seed=2)


def test_images_without_labels_split_as_one_group():
    metadata = _metadata(n=50)
    metadata["label"] = ""
    splits = split_indices(metadata, FRACTIONS)
    assert {k: len(v) for k, v in splits.items()} == {"train": 40, "val": 5, "test": 5}


def test_official_test_subset_becomes_the_test_split():
    metadata = _metadata(n=1200, test=200)
    splits = split_indices(metadata, {"train": 0.9, "val": 0.1, "test": 0.0}, official_test=True)
    assert splits["test"] == list(range(1000, 1200))
    assert len(splits["train"]) == 900 and len(splits["val"]) == 100


def test_official_test_without_a_test_subset_is_refused():
    with pytest.raises(ValueError, match="official_test"):
        split_indices(_metadata(), FRACTIONS, official_test=True)


@pytest.mark.parametrize(
    "fractions",
    [{"train": 0.8, "val": 0.1}, {"train": 0.8, "val": 0.3, "test": 0.1}, {"train": 1.2, "val": -0.1, "test": -0.1}],
)
def test_invalid_fractions_are_named(fractions):
    with pytest.raises(ValueError, match="split.fractions"):
        split_indices(_metadata(), fractions)


@pytest.mark.parametrize(
    "block, problem",
    [
        (
            {"fractions": {"train": 0.9, "val": 0.1, "test": 0}},
            "split.fractions.test: must be positive (or official_test",
        ),
        (
            {"fractions": {"train": 0.9, "val": 0, "test": 0.1}},
            "split.fractions.val: must be positive: training selects",
        ),
        ({"fractions": {"train": 0, "val": 0.5, "test": 0.5}}, "split.fractions.train: must be positive"),
        ({"fractions": {"train": 0.8, "val": 0.1, "test": 0.2}}, "split.fractions: train, val and test must sum to 1"),
        ({"fractions": {"train": 0.8, "val": 0.1, "tests": 0.1}}, "split.fractions.tests: unknown parameter"),
        ({"fractions": FRACTIONS, "seed": 1.5}, "split.seed: expected an integer, got 1.5"),
        ({"fractions": FRACTIONS, "stratify": "yes"}, "split.stratify: expected true or false"),
    ],
)
def test_an_impossible_split_block_is_refused_naming_the_key(block, problem):
    with pytest.raises(ValueError) as error:
        split_config(block)
    assert str(error.value).startswith(problem)


def test_an_official_test_set_needs_no_test_fraction():
    config = split_config({"fractions": {"train": 0.9, "val": 0.1, "test": 0.0}, "official_test": True})
    assert (config.fractions.test, config.official_test, config.seed, config.stratify) == (0.0, True, 0, True)


def test_the_split_node_refuses_an_empty_test_split():
    with pytest.raises(ValueError, match=r"^split\.fractions\.test: must be positive"):
        make_splits(_metadata(), {"fractions": {"train": 0.9, "val": 0.1, "test": 0.0}})


def test_too_few_images_for_a_fraction_are_refused_instead_of_an_empty_split():
    with pytest.raises(ValueError, match=r"^split\.fractions\.val: 0\.05 of 10 images leaves the val split empty"):
        make_splits(_metadata(n=10), {"fractions": {"train": 0.85, "val": 0.05, "test": 0.1}, "stratify": False})


def test_the_split_node_reads_the_whole_block():
    splits = make_splits(_metadata(), {"fractions": FRACTIONS, "seed": 1, "stratify": False, "official_test": False})
    assert splits == split_indices(_metadata(), FRACTIONS, seed=1, stratify=False)
