"""Tests for check_source: the data_processing.source block is checked without building the source."""

from __future__ import annotations

import pytest

from pixelheal.data import SOURCE_KINDS, check_source, make_source, sources


@pytest.mark.parametrize(
    "block",
    [
        {"kind": "sample", "n_images": 3000, "crop_size": [48, 128], "seed": 0},
        {"kind": "image_folder", "path": "nowhere/train", "test_path": "nowhere/test", "on_error": "skip"},
        {"kind": "paired_folders", "path": "nowhere", "on_unmatched": "raise", "on_error": "raise"},
        {"kind": "cifar10", "root": "nowhere", "download": False, "include_test": True},
        {"kind": "celeba", "root": "nowhere", "download": False, "limit": 1024},
    ],
)
def test_valid_blocks_pass_without_touching_files(block):
    check_source(block)  # the paths do not exist: building any of these sources would fail


def test_unknown_kind_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"^data_processing\.source\.kind: unknown source kind 'flickr'; valid: "):
        check_source({"kind": "flickr"})
    with pytest.raises(ValueError, match=r"^data_processing\.source\.kind: required parameter is missing"):
        check_source({"path": "x"})


def test_unknown_key_names_the_kind_and_the_valid_keys():
    message = r"^data_processing\.source\.pathh: source kind 'image_folder' has no parameter 'pathh'; valid: \['path'"
    with pytest.raises(ValueError, match=message):
        check_source({"kind": "image_folder", "path": "x", "pathh": "y"})


def test_missing_required_parameter_is_named():
    with pytest.raises(ValueError, match=r"^data_processing\.source\.root: required parameter of source kind 'mnist'"):
        check_source({"kind": "mnist"})


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ({"kind": "sample", "n_images": "many"}, "n_images"),
        ({"kind": "cifar10", "root": "x", "download": "yes"}, "download"),
        ({"kind": "sample", "limit": 1.5}, "limit"),
        ({"kind": "image_folder", "path": "x", "on_error": 1}, "on_error"),
    ],
)
def test_wrong_type_names_the_key(block, key):
    with pytest.raises(ValueError, match=rf"^data_processing\.source\.{key}: expected"):
        check_source(block)


def test_where_names_the_block():
    with pytest.raises(ValueError, match=r"^mine\.kind: "):
        check_source({"kind": "flickr"}, "mine")
    with pytest.raises(ValueError, match=r"^data_processing\.source: expected a mapping"):
        check_source("sample")


def test_every_kind_is_checked_and_make_source_checks_first():
    assert set(SOURCE_KINDS) == set(sources._BUILDERS)
    with pytest.raises(ValueError, match=r"^data_processing\.source\.crop: source kind 'sample'"):
        make_source("sample", crop=3)
