"""Tests for the sample, image_folder and paired_folders sources and the factory."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from pixelheal.data import ImageReadError, ImageRecord, ImageSource, make_source
from pixelheal.data.sample import DEFAULT_PHOTOS, OFFLINE_PHOTOS


def test_make_source_unknown_kind_lists_valid_kinds():
    with pytest.raises(ValueError, match="image_folder.*paired_folders.*cifar10"):
        make_source("flickr")


def test_make_source_bad_kwarg_names_the_kind(tmp_path):
    with pytest.raises(ValueError, match="image_folder.*pathh"):
        make_source("image_folder", path=tmp_path, pathh=tmp_path)


# --- sample -------------------------------------------------------------------------------


def test_sample_count_shapes_labels_sources():
    source = make_source("sample", n_images=10, crop_size=(8, 20), seed=3)
    assert isinstance(source, ImageSource)
    assert len(source) == 10
    records = list(source)
    assert len(records) == 10
    for k, record in enumerate(records):
        assert isinstance(record, ImageRecord)
        width, height = record.image.size
        assert width == height and 8 <= width <= 20
        assert record.image.mode == "RGB"
        name = DEFAULT_PHOTOS[k % len(DEFAULT_PHOTOS)]  # cycles over the photos
        assert record.label == name
        assert record.source == f"skimage:{name}#{k}"
        assert record.subset == "train" and record.paired is None


def test_sample_is_deterministic_and_seeded():
    def crops(seed):
        return [np.asarray(r.image) for r in make_source("sample", n_images=6, seed=seed)]

    first, again, other = crops(5), crops(5), crops(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(first, other))


def test_sample_reiterates_identically():
    source = make_source("sample", n_images=4, seed=1)
    first = [np.asarray(r.image) for r in source]
    second = [np.asarray(r.image) for r in source]
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_sample_crop_is_clipped_to_the_photo():
    source = make_source("sample", n_images=2, crop_size=(5000, 6000), photos=["chelsea"])
    sizes = {r.image.size for r in source}
    assert sizes == {(300, 300)}  # chelsea is 451×300


def test_every_offline_photo_loads():
    source = make_source("sample", n_images=len(OFFLINE_PHOTOS), photos=list(OFFLINE_PHOTOS))
    assert [r.label for r in source] == list(OFFLINE_PHOTOS)


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"photos": ["lena"]}, "photos"),
        ({"crop_size": (20, 10)}, "crop_size"),
        ({"crop_size": 16}, "crop_size"),
        ({"n_images": 0}, "n_images"),
    ],
)
def test_sample_invalid_parameters(kwargs, parameter):
    with pytest.raises(ValueError, match=parameter):
        make_source("sample", **kwargs)


# --- image_folder -------------------------------------------------------------------------


def test_image_folder_recursive_sorted_with_labels(class_tree):
    source = make_source("image_folder", path=class_tree)
    assert len(source) == 4
    records = list(source)
    assert [r.source for r in records] == ["cat/a.PNG", "cat/b.jpg", "dog/small/c.bmp", "top.png"]
    assert [r.label for r in records] == ["cat", "cat", "dog/small", ""]
    assert {r.subset for r in records} == {"train"}
    assert records[0].image.size == (8, 6)


def test_image_folder_test_path_is_subset_test(class_tree, tmp_path, write_image):
    write_image(tmp_path / "held_out" / "cat" / "z.png")
    source = make_source("image_folder", path=class_tree, test_path=tmp_path / "held_out")
    records = list(source)
    assert len(source) == len(records) == 5
    assert [(r.source, r.label, r.subset) for r in records[-1:]] == [("cat/z.png", "cat", "test")]
    assert [r.subset for r in records[:4]] == ["train"] * 4


def test_image_folder_extensions_filter(class_tree):
    source = make_source("image_folder", path=class_tree, extensions=["bmp"])
    assert [r.source for r in source] == ["dog/small/c.bmp"]


def test_image_folder_missing_folder_names_it(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match="nowhere"):
        make_source("image_folder", path=missing)


def test_image_folder_missing_test_path_names_it(class_tree, tmp_path):
    with pytest.raises(ValueError, match="test_path.*no_test"):
        make_source("image_folder", path=class_tree, test_path=tmp_path / "no_test")


def test_image_folder_without_images_names_it(tmp_path):
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="empty_dir.*no images"):
        make_source("image_folder", path=empty)


def test_image_folder_corrupt_file_raises_naming_it(tmp_path, write_image, junk_png):
    write_image(junk_png.parent / "ok.png")
    source = make_source("image_folder", path=junk_png.parent)
    with pytest.raises(ImageReadError, match="junk.png"):
        list(source)


def test_image_folder_skip_warns_once_per_file(write_image, junk_png, truncated_jpeg, caplog):
    write_image(junk_png.parent / "ok.png")
    source = make_source("image_folder", path=junk_png.parent, on_error="skip")
    assert len(source) == 3  # listing does not decode
    with caplog.at_level(logging.WARNING, logger="pixelheal.data"):
        records = list(source)
    assert [r.source for r in records] == ["ok.png"]
    assert sorted(source.skipped) == sorted([str(junk_png), str(truncated_jpeg)])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2


def test_image_folder_invalid_on_error(class_tree):
    with pytest.raises(ValueError, match="on_error"):
        make_source("image_folder", path=class_tree, on_error="ignore")


# --- paired_folders -----------------------------------------------------------------------


@pytest.fixture
def pairs_root(tmp_path, write_image):
    """occluded/ and original/ with pairs matched across extensions and sub-folders."""
    root = tmp_path / "pairs"
    write_image(root / "original" / "a.jpg", color=(200, 200, 200))
    write_image(root / "occluded" / "a.png", color=(0, 0, 0))
    write_image(root / "original" / "faces" / "b.png", color=(255, 255, 255))
    write_image(root / "occluded" / "faces" / "b.bmp", color=(0, 0, 0))
    return root


def test_paired_matches_by_stem_across_extensions(pairs_root):
    source = make_source("paired_folders", path=pairs_root)
    assert len(source) == 2
    records = list(source)
    assert [(r.source, r.label) for r in records] == [
        ("original/a.jpg", ""),
        ("original/faces/b.png", "faces"),
    ]
    for record in records:
        assert record.paired is not None
        assert np.asarray(record.paired).max() == 0  # occluded files are black
        assert np.asarray(record.image).min() >= 190  # originals are light


def test_paired_custom_folder_names(tmp_path, write_image):
    write_image(tmp_path / "masked" / "x.png")
    write_image(tmp_path / "clean" / "x.png")
    source = make_source("paired_folders", path=tmp_path, occluded="masked", original="clean")
    assert [r.source for r in source] == ["clean/x.png"]


def test_paired_unmatched_listed_in_one_error(pairs_root, write_image):
    write_image(pairs_root / "occluded" / "lonely.png")
    write_image(pairs_root / "original" / "faces" / "solo.jpg")
    with pytest.raises(ValueError) as excinfo:
        make_source("paired_folders", path=pairs_root)
    message = str(excinfo.value)
    assert "occluded/lonely.png (no original)" in message
    assert "original/faces/solo.jpg (no occluded)" in message
    assert "2 file(s)" in message


def test_paired_many_unmatched_are_capped_with_count(pairs_root, write_image):
    for k in range(25):
        write_image(pairs_root / "occluded" / f"extra{k:02d}.png", size=(2, 2))
    with pytest.raises(ValueError, match=r"and 5 more"):
        make_source("paired_folders", path=pairs_root)


def test_paired_skip_unmatched_warns_once(pairs_root, write_image, caplog):
    write_image(pairs_root / "occluded" / "lonely.png")
    write_image(pairs_root / "original" / "alone.png")
    with caplog.at_level(logging.WARNING, logger="pixelheal.data"):
        source = make_source("paired_folders", path=pairs_root, on_unmatched="skip")
    assert len(source) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1


def test_paired_size_mismatch_names_both_files(pairs_root, write_image):
    write_image(pairs_root / "occluded" / "a.png", size=(9, 9))
    with pytest.raises(ValueError, match=r"original.a\.jpg.*occluded.a\.png"):
        list(make_source("paired_folders", path=pairs_root))


def test_paired_ambiguous_stem_is_refused(pairs_root, write_image):
    write_image(pairs_root / "original" / "a.png")
    with pytest.raises(ValueError, match="ambiguous"):
        make_source("paired_folders", path=pairs_root)


def test_paired_missing_subfolder_names_it(tmp_path, write_image):
    write_image(tmp_path / "original" / "x.png")
    with pytest.raises(ValueError, match="occluded"):
        make_source("paired_folders", path=tmp_path)


def test_paired_skip_unreadable_pair(pairs_root):
    (pairs_root / "occluded" / "a.png").write_bytes(b"not a png")
    source = make_source("paired_folders", path=pairs_root, on_error="skip")
    assert [r.source for r in source] == ["original/faces/b.png"]
    assert source.skipped == [str(pairs_root / "occluded" / "a.png")]


def test_limit_keeps_the_first_images_of_any_source():
    from pixelheal.data import make_source

    full = [r.source for r in make_source("sample", n_images=12, seed=0)]
    limited = make_source("sample", n_images=12, seed=0, limit=5)
    assert len(limited) == 5
    assert [r.source for r in limited] == full[:5]


def test_limit_must_be_positive():
    from pixelheal.data import make_source

    with pytest.raises(ValueError, match="limit"):
        make_source("sample", n_images=12, limit=0)
