"""Sources backed by torchvision datasets: "cifar10", "mnist" and "celeba".

CelebA is read straight from its aligned-image folder, `<root>/celeba/img_align_celeba/`
(torchvision's layout) or `<root>/img_align_celeba/`: only the images are needed. torchvision's own
CelebA class would md5-check five annotation files this project never uses; here only CelebA's
official partition, `list_eval_partition.txt` beside the folder, is read when it is there (train =
partition 0, test = partition 2). Without it every image of the folder is train, in file-name
order (the partition's own order: its first 162,770 images are its train split).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from pixelheal.data.folders import IMAGE_EXTENSIONS
from pixelheal.data.records import ImageRecord, read_image

logger = logging.getLogger(__name__)

TORCHVISION_KINDS = ("cifar10", "mnist", "celeba")
CELEBA_IMAGES = "img_align_celeba"
CELEBA_PARTITION = "list_eval_partition.txt"
_CELEBA_SPLITS = {True: "0", False: "2"}  # train -> partition 0, test -> partition 2 (1 = valid, unused)


@dataclass(frozen=True)
class CelebAFiles:
    """One split of CelebA's aligned images: their folder and file names, in CelebA's order."""

    folder: Path
    filename: list[str]

    def __len__(self) -> int:
        return len(self.filename)


def celeba_folder(root: Path) -> Path | None:
    """The aligned-image folder under `root` (torchvision's `celeba/` sub-folder first), or None."""
    for folder in (root / "celeba" / CELEBA_IMAGES, root / CELEBA_IMAGES):
        if folder.is_dir():
            return folder
    return None


def _partition(path: Path, split: str) -> list[str]:
    """File names of one partition ("0" train, "2" test) of CelebA's `list_eval_partition.txt`."""
    names = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise ValueError(f"root: {path} line {number}: expected '<image file> <0|1|2>', got {line!r}")
        if fields[1] == split:
            names.append(fields[0])
    return names


def _open_celeba(root: Path, train: bool, download: bool) -> CelebAFiles:
    """One CelebA split from the image folder, fetched by torchvision first when `download`."""
    if download:
        from torchvision import datasets

        datasets.CelebA(str(root), split="all", target_type=[], download=True)
    folder = celeba_folder(root)
    if folder is None:
        raise RuntimeError(f"no {CELEBA_IMAGES} folder in {root / 'celeba'} or in {root}")
    partition = folder.parent / CELEBA_PARTITION
    if partition.is_file():
        return CelebAFiles(folder, _partition(partition, _CELEBA_SPLITS[train]))
    if not train:
        raise ValueError(
            f"root: include_test needs CelebA's official partition {partition}; without it, set "
            f"include_test: false and every image in {folder} is read as train"
        )
    names = sorted(f.name for f in folder.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
    logger.info(
        "celeba: no %s beside %s: all %d images are read as train, by file name", CELEBA_PARTITION, folder, len(names)
    )
    return CelebAFiles(folder, names)


def _open_dataset(kind: str, root: Path, train: bool, download: bool) -> Any:
    """Construct the dataset for one split (torchvision is imported lazily: it is slow)."""
    if kind == "celeba":
        return _open_celeba(root, train, download)
    from torchvision import datasets

    if kind == "cifar10":
        return datasets.CIFAR10(str(root), train=train, download=download)
    return datasets.MNIST(str(root), train=train, download=download)


def _where_files_go(kind: str, root: Path) -> str:
    """What a user must place under `root` for `kind`, in torchvision's layout."""
    if kind == "celeba":
        return f"the aligned images in {root / 'celeba' / CELEBA_IMAGES} (only the images are needed)"
    folder = {"cifar10": "cifar-10-batches-py", "mnist": "MNIST/raw"}[kind]
    return f"the {kind} files in {root / folder}"


def load_split(kind: str, root: Path, train: bool, download: bool) -> Any:
    """Open one split, turning torchvision's errors into a ValueError naming root."""
    try:
        return _open_dataset(kind, root, train, download)
    except (RuntimeError, OSError) as exc:
        # RuntimeError: files absent or corrupt; OSError: network or disk failure on download.
        if download:
            raise ValueError(f"root: could not download the {kind} dataset into {root.resolve()}: {exc}") from exc
        raise ValueError(
            f"root: {kind} dataset not found or corrupted in {root.resolve()} ({exc}). "
            f"Set download: true to fetch it, or place {_where_files_go(kind, root.resolve())}."
        ) from exc


class TorchvisionSource:
    """The train split of a torchvision dataset, optionally followed by its official test split."""

    def __init__(self, kind: str, root: str | Path, download: bool = False, include_test: bool = False) -> None:
        """Open the splits now, so a missing dataset fails before any work starts."""
        if kind not in TORCHVISION_KINDS:
            raise ValueError(f"kind must be one of {TORCHVISION_KINDS}, got {kind!r}")
        self.kind = kind
        self.root = Path(root)
        self.splits = [("train", load_split(kind, self.root, True, download))]
        if include_test:
            self.splits.append(("test", load_split(kind, self.root, False, download)))
        self.skipped: list[str] = []

    def __len__(self) -> int:
        """Total number of images over the opened splits."""
        return sum(len(dataset) for _, dataset in self.splits)

    def _item(self, dataset: Any, index: int) -> tuple[Image.Image, str, str]:
        """(image, source id, label) of one dataset item."""
        if self.kind == "celeba":
            # read_image decodes now and names the file if it is missing or broken.
            name = dataset.filename[index]
            return read_image(dataset.folder / name), name, ""
        image, target = dataset[index]
        target = int(target)
        label = dataset.classes[target] if self.kind == "cifar10" else str(target)
        return image, str(index), label

    def __iter__(self) -> Iterator[ImageRecord]:
        """Yield every image of every split, in dataset order."""
        self.skipped = []
        for subset, dataset in self.splits:
            for index in range(len(dataset)):
                image, item_id, label = self._item(dataset, index)
                source = f"{self.kind}:{subset}/{item_id}"
                yield ImageRecord(image=image, source=source, label=label, subset=subset)
