"""Batches for training: uint8 images and masks read by index, with random masks and flips.

Contract: batches hold float images in [0, 1] (B, C, H, W) and float masks (B, 1, H, W), 1 = hole.
Every random choice is derived from (seed, epoch, image index), so an epoch is reproducible on its
own: a resumed run sees exactly the batches the interrupted one would have seen.

Data-parallel ranks share each global batch of `batch_size` images in contiguous, near-equal parts
(rank r of W takes the r-th part), and masks and flips are drawn for the global batch, so the same
seed gives the same images, holes and flips for any world size. With several ranks, a last batch
smaller than the world size is dropped (a rank would get no image), and a last batch that does not
split evenly weighs each rank's part equally (DistributedDataParallel averages per-rank gradients).

Workers (`num_workers > 0`) and spawned ranks read the memory-mapped arrays through the shared page
cache: forked ones inherit the map, spawned ones reopen its file (`portable`); a batch is copied out
of the map, never the array.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

MaskGenerator = Callable[..., np.ndarray]


@dataclass(frozen=True)
class MappedArray:
    """A memory-mapped .npy array passed to a started rank by its file, so it is opened there, never copied."""

    path: str
    offset: int
    dtype: str
    shape: tuple[int, ...]
    fortran: bool

    def open(self) -> np.ndarray:
        return np.memmap(self.path, np.dtype(self.dtype), "r", self.offset, self.shape, "F" if self.fortran else "C")


def portable(array: np.ndarray) -> np.ndarray | MappedArray:
    """What to send a started rank: the file of a memory-mapped array (pickling one copies all its data)."""
    if isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap):  # the whole file's array, not a view
        return MappedArray(str(array.filename), array.offset, array.dtype.str, array.shape, np.isfortran(array))
    return array


def opened(array: np.ndarray | MappedArray) -> np.ndarray:
    """The array a `portable` stands for, in the started rank."""
    return array.open() if isinstance(array, MappedArray) else array


class EpochBatches(Dataset):
    """Item b is the b-th batch of one epoch; whole batches keep per-item overhead off the hot path."""

    def __init__(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        indices: np.ndarray,
        batch_size: int,
        *,
        seed: int,
        epoch: int,
        shuffle: bool = True,
        flip: bool = False,
        mask_generator: MaskGenerator | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        order = np.random.default_rng([seed, epoch]).permutation(indices) if shuffle else np.asarray(indices)
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        self.batches = [batch for batch in batches if len(batch) >= world_size]
        self.images, self.masks = images, masks
        self.seed, self.epoch, self.flip, self.mask_generator = seed, epoch, flip, mask_generator
        self.rank, self.world_size = rank, world_size

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for a spawned worker or rank: the memory-mapped arrays travel as their files, not their data."""
        return self.__dict__ | {"images": portable(self.images), "masks": portable(self.masks)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state | {"images": opened(state["images"]), "masks": opened(state["masks"])})

    def __len__(self) -> int:
        return len(self.batches)

    def _share(self, n: int) -> slice:
        """This rank's part of a global batch of `n` images (the first n % W ranks take one more)."""
        size, extra = divmod(n, self.world_size)
        start = self.rank * size + min(self.rank, extra)
        return slice(start, start + size + (self.rank < extra))

    def __getitem__(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        batch = np.sort(self.batches[b])  # sorted reads are sequential on a memory-mapped file
        share = self._share(len(batch))
        idx = batch[share]
        images = np.ascontiguousarray(self.images[idx])  # (B, C, H, W) uint8
        if self.mask_generator is None:
            masks = np.ascontiguousarray(self.masks[idx])  # (B, 1, H, W) uint8
        else:
            h, w = images.shape[-2:]
            masks = np.stack(
                [
                    self.mask_generator(h, w, np.random.default_rng([self.seed, self.epoch, int(i)]), image=image)
                    for i, image in zip(idx, images)
                ]
            )
        if self.flip:  # drawn for the global batch: every world size flips the same images
            flipped = (np.random.default_rng([self.seed, self.epoch, b, 1]).random(len(batch)) < 0.5)[share]
            images[flipped] = images[flipped, ..., ::-1]
            masks[flipped] = masks[flipped, ..., ::-1]  # masks may follow the image content (DeepLabV3)
        return torch.from_numpy(images).float().div_(255), torch.from_numpy(masks).float()


def make_loader(batches: EpochBatches, num_workers: int, pin_memory: bool) -> DataLoader:
    """A loader over whole batches (`batch_size=None` disables re-batching)."""
    return DataLoader(batches, batch_size=None, shuffle=False, num_workers=num_workers, pin_memory=pin_memory)
