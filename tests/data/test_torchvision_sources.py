"""Tests for the cifar10 / mnist / celeba sources, on fabricated files (never the network)."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
from PIL import Image

from pixelheal.data import ImageReadError, build_image_set, make_source

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.mark.parametrize("kind", ["cifar10", "mnist", "celeba"])
def test_absent_dataset_names_root_and_remedy(kind, tmp_path):
    root = tmp_path / "no_data_here"
    with pytest.raises(ValueError, match=r"no_data_here.*download: true") as excinfo:
        make_source(kind, root=root)
    assert "place" in str(excinfo.value)


def _write_cifar(root, per_batch: int = 2) -> None:
    """The python-pickle CIFAR-10 layout, with ``per_batch`` images per batch file."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        data = rng.integers(0, 256, (per_batch, 3 * 32 * 32), dtype=np.uint8)
        labels = [(b + i) % 10 for i in range(per_batch)]
        (folder / name).write_bytes(pickle.dumps({"data": data, "labels": labels}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CIFAR_CLASSES}))


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    """A tiny CIFAR-10 on disk; md5 checks are disabled since the files are not the real ones."""
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    _write_cifar(tmp_path / "cifar")
    return tmp_path / "cifar"


def test_cifar10_from_files(fake_cifar):
    source = make_source("cifar10", root=fake_cifar)
    assert len(source) == 10
    records = list(source)
    assert [r.source for r in records[:2]] == ["cifar10:train/0", "cifar10:train/1"]
    assert [r.label for r in records[:3]] == ["airplane", "automobile", "automobile"]
    assert {r.subset for r in records} == {"train"}
    assert records[0].image.size == (32, 32) and records[0].image.mode == "RGB"


def test_cifar10_include_test(fake_cifar):
    source = make_source("cifar10", root=fake_cifar, include_test=True)
    records = list(source)
    assert len(source) == len(records) == 12
    assert [r.subset for r in records[-2:]] == ["test", "test"]
    assert records[-1].source == "cifar10:test/1"
    assert records[-1].label == CIFAR_CLASSES[6]  # test batch is the 6th file: labels 5, 6


def _idx(magic_type: int, array: np.ndarray) -> bytes:
    """An IDX (MNIST) file: big-endian magic and dims, then uint8 data."""
    header = struct.pack(">I", (magic_type << 8) | array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def fake_mnist(tmp_path):
    """A tiny MNIST in torchvision's raw IDX layout (no checksum is checked for it)."""
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 3), ("t10k", 2)):
        images = np.full((n, 28, 28), 200, dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(0x08, images))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(0x08, np.arange(n) + 7))
    return tmp_path / "mnist"


def test_mnist_labels_are_digit_strings(fake_mnist):
    source = make_source("mnist", root=fake_mnist, include_test=True)
    records = list(source)
    assert len(source) == 5
    assert [r.label for r in records] == ["7", "8", "9", "7", "8"]
    assert [r.subset for r in records] == ["train"] * 3 + ["test"] * 2
    result = build_image_set(source, 28, color_mode="L", binarize=0.5, progress=False)
    assert result.images.shape == (5, 1, 28, 28) and np.all(result.images[:] == 255)


@pytest.fixture
def fake_celeba(tmp_path, monkeypatch, write_image):
    """A five-image CelebA: partitions 0, 0 (train), 1 (valid), 2, 2 (test).

    Two images per split: torchvision's CelebA cannot index a split of exactly one.
    """
    import torchvision.datasets.celeba as celeba

    monkeypatch.setattr(celeba, "check_integrity", lambda *args, **kwargs: True)
    folder = tmp_path / "celeba_root" / "celeba"
    names = [f"00000{k}.jpg" for k in range(1, 6)]
    partitions = [0, 0, 1, 2, 2]
    for k, name in enumerate(names):
        write_image(folder / "img_align_celeba" / name, size=(6, 7), color=(k * 50, 0, 0))

    def rows(values: str) -> str:
        return "".join(f"{n} {values}\n" for n in names)

    partition_rows = "".join(f"{n} {p}\n" for n, p in zip(names, partitions))
    (folder / "list_eval_partition.txt").write_text(partition_rows)
    (folder / "identity_CelebA.txt").write_text(rows("1"))
    bbox = "5\nimage_id x_1 y_1 width height\n" + rows("0 0 6 7")
    (folder / "list_bbox_celeba.txt").write_text(bbox)
    landmarks = "5\n" + " ".join(f"p{i}" for i in range(10)) + "\n" + rows(" ".join(["1"] * 10))
    (folder / "list_landmarks_align_celeba.txt").write_text(landmarks)
    (folder / "list_attr_celeba.txt").write_text("5\nSmiling Young\n" + rows("1 -1"))
    return tmp_path / "celeba_root"


def test_celeba_train_and_test_splits(fake_celeba):
    source = make_source("celeba", root=fake_celeba, include_test=True)
    records = list(source)
    assert len(source) == 4  # the "valid" partition is not used
    assert [(r.source, r.subset, r.label) for r in records] == [
        ("celeba:train/000001.jpg", "train", ""),
        ("celeba:train/000002.jpg", "train", ""),
        ("celeba:test/000004.jpg", "test", ""),
        ("celeba:test/000005.jpg", "test", ""),
    ]
    assert records[2].image.size == (6, 7)


def test_celeba_corrupt_image_names_file(fake_celeba):
    bad = fake_celeba / "celeba" / "img_align_celeba" / "000001.jpg"
    bad.write_bytes(b"\xff\xd8 broken")
    with pytest.raises(ImageReadError, match="000001.jpg"):
        list(make_source("celeba", root=fake_celeba))


@pytest.mark.parametrize("layout", ["celeba/img_align_celeba", "img_align_celeba"])
def test_celeba_needs_only_the_aligned_images(tmp_path, write_image, layout):
    """No annotation file, no partition: the images in file-name order, all train, with a limit."""
    folder = tmp_path / "root" / layout
    for k in (3, 1, 2):
        write_image(folder / f"00000{k}.jpg", size=(6, 7), color=(k * 50, 0, 0))
    (folder / "notes.txt").write_text("not an image")
    source = make_source("celeba", root=tmp_path / "root", limit=2)
    assert [(r.source, r.subset) for r in source] == [
        ("celeba:train/000001.jpg", "train"),
        ("celeba:train/000002.jpg", "train"),
    ]
    assert len(make_source("celeba", root=tmp_path / "root")) == 3


def test_celeba_partition_is_read_without_the_other_annotations(tmp_path, write_image):
    folder = tmp_path / "root" / "celeba"
    for k in range(1, 6):
        write_image(folder / "img_align_celeba" / f"00000{k}.jpg")
    (folder / "list_eval_partition.txt").write_text(
        "".join(f"00000{k}.jpg {p}\n" for k, p in zip(range(1, 6), [0, 0, 1, 2, 0]))
    )
    records = list(make_source("celeba", root=tmp_path / "root", include_test=True))
    assert [(r.source, r.subset) for r in records] == [
        ("celeba:train/000001.jpg", "train"),
        ("celeba:train/000002.jpg", "train"),
        ("celeba:train/000005.jpg", "train"),
        ("celeba:test/000004.jpg", "test"),
    ]


def test_celeba_test_split_without_the_partition_is_refused(tmp_path, write_image):
    write_image(tmp_path / "root" / "celeba" / "img_align_celeba" / "000001.jpg")
    with pytest.raises(
        ValueError, match=r"^root: include_test needs CelebA's official partition .*list_eval_partition.txt"
    ):
        make_source("celeba", root=tmp_path / "root", include_test=True)


def test_celeba_malformed_partition_names_the_line(tmp_path, write_image):
    folder = tmp_path / "root" / "celeba"
    write_image(folder / "img_align_celeba" / "000001.jpg")
    (folder / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg train\n")
    with pytest.raises(ValueError, match=r"list_eval_partition.txt line 2: expected '<image file> <0\|1\|2>'"):
        make_source("celeba", root=tmp_path / "root")


def test_absent_celeba_names_the_folder_torchvision_uses(tmp_path):
    root = tmp_path / "data" / "celeba"
    root.mkdir(parents=True)
    with pytest.raises(ValueError) as excinfo:
        make_source("celeba", root=root)
    message = str(excinfo.value)
    assert "\n" not in message
    assert f"place the aligned images in {root / 'celeba' / 'img_align_celeba'}" in message
    assert "only the images are needed" in message


def test_cifar_images_match_pickled_pixels(fake_cifar):
    record = next(iter(make_source("cifar10", root=fake_cifar)))
    entry = pickle.loads((fake_cifar / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    expected = entry["data"][0].reshape(3, 32, 32)  # CIFAR stores planar RGB
    assert np.array_equal(np.asarray(record.image).transpose(2, 0, 1), expected)
    assert isinstance(record.image, Image.Image)


def test_failed_download_names_root(tmp_path, monkeypatch):
    from urllib.error import URLError

    import torchvision.datasets as datasets

    def offline(self) -> None:
        raise URLError("network unreachable")

    monkeypatch.setattr(datasets.CIFAR10, "download", offline)
    with pytest.raises(ValueError, match=r"could not download.*cifar_dl.*network unreachable"):
        make_source("cifar10", root=tmp_path / "cifar_dl", download=True)
