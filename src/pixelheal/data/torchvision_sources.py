"""Sources backed by torchvision datasets: "cifar10", "mnist" and "celeba"."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from pixelheal.data.records import ImageRecord, read_image

logger = logging.getLogger(__name__)

TORCHVISION_KINDS = ("cifar10", "mnist", "celeba")


def _open_dataset(kind: str, root: Path, train: bool, download: bool) -> Any:
    """Construct the torchvision dataset for one split (imported lazily: torchvision is slow)."""
    from torchvision import datasets

    if kind == "cifar10":
        return datasets.CIFAR10(str(root), train=train, download=download)
    if kind == "mnist":
        return datasets.MNIST(str(root), train=train, download=download)
    # target_type=[]: we need only the images, not CelebA's attribute tensors.
    split = "train" if train else "test"
    return datasets.CelebA(str(root), split=split, target_type=[], download=download)


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
            f"Set download: true to fetch it, or place the {kind} files there."
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
            # CelebA's __getitem__ opens files lazily; read_image decodes now and names the file.
            name = dataset.filename[index]
            image = read_image(Path(dataset.root, dataset.base_folder, "img_align_celeba", name))
            return image, name, ""
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
