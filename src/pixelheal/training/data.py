"""Batches for training: uint8 images and masks read by index, with random masks and flips.

Contract: batches hold float images in [0, 1] (B, C, H, W) and float masks (B, 1, H, W), 1 = hole.
Every random choice is derived from (seed, epoch, image index), so an epoch is reproducible on its
own: a resumed run sees exactly the batches the interrupted one would have seen.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

MaskGenerator = Callable[..., np.ndarray]


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
    ) -> None:
        order = np.random.default_rng([seed, epoch]).permutation(indices) if shuffle else np.asarray(indices)
        self.batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        self.images, self.masks = images, masks
        self.seed, self.epoch, self.flip, self.mask_generator = seed, epoch, flip, mask_generator

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.sort(self.batches[b])  # sorted reads are sequential on a memory-mapped file
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
        if self.flip:
            flipped = np.random.default_rng([self.seed, self.epoch, b, 1]).random(len(idx)) < 0.5
            images[flipped] = images[flipped, ..., ::-1]
            masks[flipped] = masks[flipped, ..., ::-1]  # masks may follow the image content (DeepLabV3)
        return torch.from_numpy(images).float().div_(255), torch.from_numpy(masks).float()


def make_loader(batches: EpochBatches, num_workers: int, pin_memory: bool) -> DataLoader:
    """A loader over whole batches (`batch_size=None` disables re-batching)."""
    return DataLoader(batches, batch_size=None, shuffle=False, num_workers=num_workers, pin_memory=pin_memory)
