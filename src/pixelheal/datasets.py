"""Kedro datasets for PixelHeal's arrays and checkpoints; every save is atomic (no half-written file)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from kedro.io import AbstractDataset, DatasetError

from pixelheal.models import read_checkpoint


def _replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write through `write(tmp_path)` into a temp file beside `path`, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # temp files of the producers are private (0600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _save_npy(array: np.ndarray, path: Path) -> None:
    with path.open("wb") as f:  # a file object: np.save would append ".npy" to a bare path
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)


class NumpyArrayDataset(AbstractDataset[np.ndarray, np.ndarray]):
    """A `.npy` array loaded memory-mapped (read-only), so sets larger than RAM can be used."""

    def __init__(self, *, filepath: str, mmap_mode: str | None = "r", metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self._mmap_mode = mmap_mode
        self.metadata = metadata

    def load(self) -> np.ndarray:
        try:
            return np.load(self._filepath, mmap_mode=self._mmap_mode)
        except ValueError:  # an empty array cannot be memory-mapped
            return np.load(self._filepath)

    def save(self, data: np.ndarray) -> None:
        source = getattr(data, "filename", None)
        if isinstance(data, np.memmap) and source and Path(source).suffix == ".npy":
            # The producer already streamed the array into a temp .npy: move it instead of copying.
            data.flush()
            _replace_atomically(self._filepath, lambda tmp: shutil.move(source, tmp))
        else:
            _replace_atomically(self._filepath, lambda tmp: _save_npy(data, tmp))

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "mmap_mode": self._mmap_mode}


class CheckpointDataset(AbstractDataset[dict, dict]):
    """A PixelHeal checkpoint (see `pixelheal.models.load`) stored with `torch.save`."""

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        try:
            return read_checkpoint(self._filepath)
        except FileNotFoundError as error:
            raise DatasetError(str(error)) from None

    def save(self, data: dict[str, Any]) -> None:
        _replace_atomically(self._filepath, lambda tmp: torch.save(data, tmp))

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
