"""Tests for build_image_set: memmap storage, metadata, pairs, skipping, cleanup, real data."""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelheal.data import ImageReadError, ImageRecord, ImageSet, build_image_set, make_source
from pixelheal.data.scratch import scratch_file

CIFAR10_SAMPLE = Path(__file__).resolve().parents[2] / "../shared/datasets/cifar10_sample"


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """Route tempfile into an empty folder, so the test can see the memmap files."""
    folder = tmp_path / "tempdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def folder_source(tmp_path, write_image):
    """Three readable images in two classes, in different sizes and colours."""
    root = tmp_path / "imgs"
    write_image(root / "a" / "1.png", size=(10, 8), color=(255, 0, 0))
    write_image(root / "a" / "2.png", size=(8, 8), color=(0, 255, 0))
    write_image(root / "b" / "3.bmp", size=(5, 9), color=(0, 0, 255))
    return root


def test_build_shapes_memmap_and_metadata(folder_source, private_tmp):
    result = build_image_set(make_source("image_folder", path=folder_source), 6, progress=False)
    assert isinstance(result, ImageSet)
    assert isinstance(result.images, np.memmap)
    assert result.images.dtype == np.uint8 and result.images.shape == (3, 3, 6, 6)
    assert Path(result.images.filename).parent == private_tmp
    assert Path(result.images.filename).suffix == ".npy"
    assert np.array_equal(np.load(result.images.filename), result.images)  # a valid .npy file
    assert result.images[0, :, 0, 0].tolist() == [255, 0, 0]
    assert result.images[2, :, 0, 0].tolist() == [0, 0, 255]
    assert list(result.metadata.columns) == ["id", "source", "label", "subset"]
    assert result.metadata["id"].tolist() == [0, 1, 2]
    assert result.metadata["label"].tolist() == ["a", "a", "b"]
    assert result.metadata["source"].tolist() == ["a/1.png", "a/2.png", "b/3.bmp"]
    assert result.paired.shape == (0, 3, 6, 6)
    assert result.skipped == []


def test_build_grayscale_non_square(folder_source):
    result = build_image_set(make_source("image_folder", path=folder_source), (4, 7), color_mode="L", progress=False)
    assert result.images.shape == (3, 1, 4, 7) and result.paired.shape == (0, 1, 4, 7)


def test_build_is_byte_identical_across_runs():
    def build() -> np.ndarray:
        source = make_source("sample", n_images=6, crop_size=(10, 40), seed=2)
        return np.array(build_image_set(source, 16, center_crop=0.8, progress=True).images)

    assert build().tobytes() == build().tobytes()


def test_build_paired(tmp_path, write_image):
    write_image(tmp_path / "original" / "x.png", size=(12, 12), color=(200, 100, 50))
    write_image(tmp_path / "occluded" / "x.jpg", size=(12, 12), color=(0, 0, 0))
    result = build_image_set(make_source("paired_folders", path=tmp_path), 8, progress=False)
    assert result.images.shape == result.paired.shape == (1, 3, 8, 8)
    assert isinstance(result.paired, np.memmap)
    assert result.images[0, :, 0, 0].tolist() == [200, 100, 50]
    assert result.paired.max() <= 2  # black, up to JPEG noise


def test_build_skips_and_truncates(folder_source, junk_png, truncated_jpeg, private_tmp):
    for broken in (junk_png, truncated_jpeg):
        broken.rename(folder_source / "a" / broken.name)
    source = make_source("image_folder", path=folder_source, on_error="skip")
    assert len(source) == 5
    result = build_image_set(source, 4, progress=False)
    assert result.images.shape == (3, 3, 4, 4)
    assert isinstance(result.images, np.memmap)
    assert sorted(Path(p).name for p in result.skipped) == ["junk.png", "truncated.jpg"]
    assert result.metadata["id"].tolist() == [0, 1, 2]
    assert result.metadata["source"].tolist() == ["a/1.png", "a/2.png", "b/3.bmp"]
    assert os.listdir(private_tmp) == [Path(result.images.filename).name]  # oversized one removed


def test_build_corrupt_raises_naming_file_and_cleans_up(folder_source, truncated_jpeg, private_tmp):
    truncated_jpeg.rename(folder_source / "b" / truncated_jpeg.name)
    with pytest.raises(ImageReadError, match="truncated.jpg"):
        build_image_set(make_source("image_folder", path=folder_source), 4, progress=False)
    gc.collect()
    assert os.listdir(private_tmp) == []


def test_build_crop_error_names_source_and_parameter(folder_source, private_tmp):
    source = make_source("image_folder", path=folder_source)
    with pytest.raises(ValueError, match=r"a/1\.png.*center_crop"):
        build_image_set(source, 4, center_crop=9, progress=False)  # 1.png is 10×8
    assert os.listdir(private_tmp) == []


def test_temp_file_removed_when_array_is_collected(folder_source, private_tmp):
    result = build_image_set(make_source("image_folder", path=folder_source), 4, progress=False)
    assert len(os.listdir(private_tmp)) == 1
    del result
    gc.collect()
    assert os.listdir(private_tmp) == []


def test_all_unreadable_is_an_error(junk_png):
    source = make_source("image_folder", path=junk_png.parent, on_error="skip")
    with pytest.raises(ValueError, match="none of the 1 images"):
        build_image_set(source, 4, progress=False)


class _ListSource:
    """A hand-made source whose len() and records can disagree."""

    def __init__(self, records: list[ImageRecord], length: int) -> None:
        self.records, self.length = records, length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.records)


def _record(k: int, paired: bool = False) -> ImageRecord:
    image = Image.new("RGB", (4, 4), (k, k, k))
    return ImageRecord(image, f"r{k}", "", "train", image if paired else None)


def test_source_longer_than_its_len_is_refused():
    with pytest.raises(ValueError, match="more images than its len"):
        build_image_set(_ListSource([_record(0), _record(1)], 1), 4, progress=False)


def test_mixed_paired_records_are_refused():
    source = _ListSource([_record(0, paired=True), _record(1)], 2)
    with pytest.raises(ValueError, match="r1.*lacks an occluded counterpart"):
        build_image_set(source, 4, progress=False)


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"image_size": -1}, "image_size"),
        ({"image_size": 4, "color_mode": "rgb"}, "color_mode"),
        ({"image_size": 4, "binarize": 2}, "binarize"),
    ],
)
def test_invalid_parameters_fail_before_reading(kwargs, parameter):
    with pytest.raises(ValueError, match=parameter):
        build_image_set(_ListSource([_record(0)], 1), progress=False, **kwargs)


def test_cifar10_sample_train_folder():  # about 1 s: not marked slow
    train = CIFAR10_SAMPLE / "train"
    if not train.is_dir():
        pytest.skip(f"real-data sample not present at {train.resolve()}")
    result = build_image_set(make_source("image_folder", path=train), 32, progress=False)
    assert result.images.shape == (5000, 3, 32, 32)
    counts = result.metadata["label"].value_counts()
    assert len(counts) == 10 and set(counts) == {500}
    assert "cat" in counts.index
    assert result.images.std() > 20  # real photographs, not blank arrays


# --- scratch files of killed runs ---------------------------------------------------------


def _killed_run_leftover(folder: Path) -> Path:
    """The scratch file of a process that died by SIGKILL right after creating it."""
    code = (
        "import os, signal, sys, tempfile\n"
        "tempfile.tempdir = sys.argv[1]\n"
        "from pixelheal.data.scratch import scratch_file\n"
        "print(scratch_file('images'), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=60)
    assert run.returncode == -signal.SIGKILL, run.stderr
    leftover = Path(run.stdout.strip())
    assert leftover.parent == folder and leftover.is_file()
    return leftover


@pytest.mark.skipif(os.name != "posix", reason="dead processes are told apart by pid on POSIX only")
def test_next_build_removes_a_killed_runs_scratch_file(folder_source, private_tmp, caplog, unchanged):
    leftover = _killed_run_leftover(private_tmp)
    prefix, kind, host, _pid, rest = leftover.name.split("-")
    live = private_tmp / "-".join([prefix, kind, host, str(os.getpid()), rest])
    live.write_bytes(b"in use")  # this process's own: kept
    foreign = private_tmp / "pixelheal-images-otherhost-1-abc.npy"
    foreign.write_bytes(b"another machine's")  # its pid means nothing here: kept
    unrelated = private_tmp / "notes.npy"
    unrelated.write_bytes(b"not ours")
    check = unchanged(folder_source)
    with caplog.at_level(logging.INFO, logger="pixelheal.data"):
        result = build_image_set(make_source("image_folder", path=folder_source), 4, progress=False)
    assert not leftover.exists()
    assert any(str(leftover) in r.getMessage() and "ended process" in r.getMessage() for r in caplog.records)
    assert result.images.shape == (3, 3, 4, 4)
    assert sorted(os.listdir(private_tmp)) == sorted(
        [live.name, foreign.name, unrelated.name, Path(result.images.filename).name]
    )
    check()


@pytest.mark.skipif(os.name != "posix", reason="dead processes are told apart by pid on POSIX only")
def test_failing_build_removes_leftovers_and_leaves_nothing(folder_source, truncated_jpeg, private_tmp):
    leftover = _killed_run_leftover(private_tmp)
    truncated_jpeg.rename(folder_source / "b" / truncated_jpeg.name)
    with pytest.raises(ImageReadError, match="truncated.jpg"):
        build_image_set(make_source("image_folder", path=folder_source), 4, progress=False)
    gc.collect()
    assert not leftover.exists()
    assert os.listdir(private_tmp) == []


def test_scratch_file_names_its_process(private_tmp):
    path = scratch_file("masks")
    assert path.parent == private_tmp and path.is_file() and path.suffix == ".npy"
    assert path.name.startswith("pixelheal-masks-") and f"-{os.getpid()}-" in path.name
    with pytest.raises(ValueError, match="kind"):
        scratch_file("Masks!")
