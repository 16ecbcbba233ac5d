"""Build the processed image set from a source: one pass, straight into a memory-mapped array.

Memory stays bounded whatever the set's size: every `RESIDENT_BYTES` of written rows are flushed to
the file and released from the process (`madvise(MADV_DONTNEED)`), since the mapped pages it has
written would otherwise stay counted in its resident memory until the kernel is short of RAM.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from pixelheal.data.records import ImageRecord, ImageSource
from pixelheal.data.scratch import scratch_file
from pixelheal.data.transforms import prepare, preprocessing_config

logger = logging.getLogger(__name__)

METADATA_COLUMNS = ("id", "source", "label", "subset")
RESIDENT_BYTES = 8 * 2**20  # written rows kept mapped in memory before they are flushed and released


@dataclass
class ImageSet:
    """Prepared images (N×C×H×W uint8 memmap), their metadata and optional occluded pairs."""

    images: np.ndarray
    metadata: pd.DataFrame
    paired: np.ndarray
    skipped: list[str] = field(default_factory=list)


def _remove_file(path: str) -> None:
    """Delete a temporary file if it is still there."""
    # Already gone, or still mapped on a platform that refuses (Windows): leave it.
    with contextlib.suppress(OSError):
        os.remove(path)


def temp_memmap(shape: tuple[int, ...]) -> tuple[np.memmap, Callable[[], None]]:
    """A uint8 .npy memmap in a fresh scratch file, and a callable that deletes that file.

    The file is also deleted when the array is garbage-collected (or at exit), so a set
    that is persisted elsewhere (np.save, a catalog dataset) leaves nothing behind; a killed
    process's file is removed by the next scratch_file call.
    """
    path = str(scratch_file("images"))
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    return array, weakref.finalize(array, _remove_file, path)


def release(array: np.ndarray) -> None:
    """Flush a writable memmap to its file and drop its pages from this process (they stay in the file)."""
    if isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap):
        array.flush()
        if hasattr(mmap, "MADV_DONTNEED"):  # not on Windows, where the pages simply stay until evicted
            array.base.madvise(mmap.MADV_DONTNEED)


def _check_paired(record: ImageRecord, index: int, has_paired: bool) -> None:
    """Refuse a source that mixes records with and without an occluded counterpart."""
    if (record.paired is not None) != has_paired:
        raise ValueError(
            f"{record.source}: record {index} "
            f"{'lacks' if has_paired else 'has'} an occluded counterpart, unlike the first record"
        )


class _Writer:
    """Writes prepared records into preallocated memmaps, one row at a time."""

    def __init__(self, shape: tuple[int, int, int, int], prepare: Callable) -> None:
        """Allocate the image memmap; the paired one waits for the first record."""
        self.shape = shape
        self.prepare = prepare
        self.images, self.drop_images = temp_memmap(shape)
        self.paired: np.ndarray | None = None
        self.drop_paired: Callable[[], None] = lambda: None
        self.rows: list[tuple[int, str, str, str]] = []
        self.rows_resident = max(1, RESIDENT_BYTES // int(np.prod(shape[1:])))

    def add(self, record: ImageRecord) -> None:
        """Prepare one record into the next row."""
        index = len(self.rows)
        if index >= self.shape[0]:
            raise ValueError(f"source yielded more images than its len() ({self.shape[0]})")
        if index == 0 and record.paired is not None:
            self.paired, self.drop_paired = temp_memmap(self.shape)
        _check_paired(record, index, self.paired is not None)
        self.images[index] = self._prepare(record.image, record.source)  # (C, H, W)
        if self.paired is not None:
            self.paired[index] = self._prepare(record.paired, record.source)  # (C, H, W)
        self.rows.append((index, record.source, record.label, record.subset))
        if (index + 1) % self.rows_resident == 0:
            release(self.images)
            if self.paired is not None:
                release(self.paired)

    def _prepare(self, image: Image.Image, source: str) -> np.ndarray:
        """prepare, with the record's source named in any parameter error."""
        try:
            return self.prepare(image)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from exc

    def discard(self) -> None:
        """Delete the temp files (after a failure)."""
        self.drop_images()
        self.drop_paired()


def _truncate(array: np.ndarray, drop: Callable[[], None], kept: int) -> np.ndarray:
    """Copy the first ``kept`` rows into a right-sized memmap and delete the old file."""
    smaller, _ = temp_memmap((kept, *array.shape[1:]))
    step = max(1, RESIDENT_BYTES // int(np.prod(array.shape[1:])))
    for start in range(0, kept, step):
        smaller[start : start + step] = array[start : min(start + step, kept)]
        release(smaller)
        release(array)
    drop()
    return smaller


def _finish(writer: _Writer, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Final (images, paired): truncated when rows were skipped, flushed to their files."""
    kept = len(writer.rows)
    images, paired = writer.images, writer.paired
    if kept < total:
        images = _truncate(images, writer.drop_images, kept)
        if paired is not None:
            paired = _truncate(paired, writer.drop_paired, kept)
    images.flush()
    if paired is None:
        paired = np.empty((0, *writer.shape[1:]), dtype=np.uint8)
    else:
        paired.flush()
    return images, paired


def build_image_set(
    source: ImageSource,
    image_size: int | tuple[int, int],
    center_crop: float | int | None = None,
    color_mode: str = "RGB",
    binarize: float | None = None,
    progress: bool = True,
) -> ImageSet:
    """Read every record of ``source`` once and prepare it into an :class:`ImageSet`."""
    config = preprocessing_config(
        {"image_size": image_size, "center_crop": center_crop, "color_mode": color_mode, "binarize": binarize}
    )
    total = len(source)
    if total == 0:
        raise ValueError("source: the image source is empty, nothing to build")
    writer = _Writer((total, config.channels, *config.size), lambda image: prepare(image, config))
    try:
        bar = tqdm(source, total=total, disable=not progress, desc="Preparing images", unit="img")
        for record in bar:
            writer.add(record)
        if not writer.rows:
            raise ValueError(f"source: none of the {total} images could be read")
        images, paired = _finish(writer, total)
    except BaseException:
        writer.discard()  # nothing half-written is left in the temp folder
        raise
    skipped = list(getattr(source, "skipped", []))
    if skipped:
        logger.warning("Skipped %d unreadable file(s) of %d", len(skipped), total)
    metadata = pd.DataFrame(writer.rows, columns=list(METADATA_COLUMNS))
    metadata["id"] = metadata["id"].astype(np.int64)
    logger.info("Prepared %d images of shape %s", len(metadata), images.shape[1:])
    return ImageSet(images=images, metadata=metadata, paired=paired, skipped=skipped)
