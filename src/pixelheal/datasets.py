"""Kedro datasets for PixelHeal's arrays, checkpoints and training resume states; every save is atomic."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from pixelheal.models.checkpoint import Checkpoint, read_checkpoint, save_checkpoint, train_state_path
from pixelheal.storage import write_atomically


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
            write_atomically(self._filepath, lambda tmp: shutil.move(source, tmp))
        else:
            write_atomically(self._filepath, lambda tmp: _save_npy(data, tmp))

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "mmap_mode": self._mmap_mode}


class CheckpointDataset(AbstractDataset[Checkpoint, Checkpoint]):
    """A PixelHeal checkpoint file (see `pixelheal.models.checkpoint`)."""

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> Checkpoint:
        try:
            return read_checkpoint(self._filepath)
        except (FileNotFoundError, ValueError) as error:  # one line naming the file, not Kedro's wrapper text
            raise DatasetError(str(error)) from None

    def save(self, data: Checkpoint) -> None:
        save_checkpoint(data, self._filepath)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


class TrainStateDataset(AbstractDataset[None, Path]):
    """Where training keeps the resume state of the checkpoint at `filepath` (`train_state_path` of it).

    `filepath` is the checkpoint's own path, so the state's place is derived in one function and
    never repeated in the configuration. Loading returns that path for the training loop to read and
    write; the dataset always exists, as a missing state only means there is nothing to resume yet.
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = train_state_path(filepath)
        self.metadata = metadata

    def load(self) -> Path:
        return self._filepath

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._filepath}: the training loop writes its resume state itself")

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


class BytesDataset(AbstractDataset[bytes, bytes]):
    """A file of raw bytes (an exported ONNX or TorchScript model), replaced whole by an atomic write."""

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> bytes:
        return self._filepath.read_bytes()

    def save(self, data: bytes) -> None:
        write_atomically(self._filepath, lambda tmp: tmp.write_bytes(data))

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
