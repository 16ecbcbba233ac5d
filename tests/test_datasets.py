"""The project's Kedro datasets: atomic saves, the memmap move, load errors, the derived resume-state path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from kedro.io import DatasetError

from pixelheal.datasets import CheckpointDataset, NumpyArrayDataset, TrainStateDataset
from pixelheal.models.checkpoint import TRAIN_STATE_FORMAT, read_checkpoint
from pixelheal.pipelines.train.nodes import train_model
from tests.inference.helpers import tiny_checkpoint


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_an_array_saves_atomically_and_loads_memory_mapped_read_only(tmp_path):
    dataset = NumpyArrayDataset(filepath=str(tmp_path / "sub" / "images.npy"))
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 2, 2)
    dataset.save(array)
    loaded = dataset.load()
    assert isinstance(loaded, np.memmap) and not loaded.flags.writeable
    assert np.array_equal(loaded, array) and dataset.exists()
    assert _files(tmp_path / "sub") == ["images.npy"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "sub" / "images.npy").st_mode & 0o777 == 0o666 & ~umask  # not the temp file's 0600


def test_an_empty_array_loads_without_memory_mapping(tmp_path):
    dataset = NumpyArrayDataset(filepath=str(tmp_path / "masks.npy"))
    dataset.save(np.zeros((0, 1, 4, 4), np.uint8))
    assert dataset.load().shape == (0, 1, 4, 4)


def test_a_streamed_memmap_is_moved_into_place_not_copied(tmp_path):
    source = tmp_path / "scratch.npy"
    streamed = np.lib.format.open_memmap(source, mode="w+", dtype=np.uint8, shape=(3, 4))
    streamed[:] = 7
    dataset = NumpyArrayDataset(filepath=str(tmp_path / "out" / "images.npy"))
    dataset.save(streamed)
    assert not source.exists()
    assert np.array_equal(dataset.load(), np.full((3, 4), 7, np.uint8))


def test_a_failed_save_keeps_the_previous_array(tmp_path, monkeypatch):
    dataset = NumpyArrayDataset(filepath=str(tmp_path / "images.npy"))
    dataset.save(np.ones(3, np.uint8))
    monkeypatch.setattr(np, "save", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(np.zeros(3, np.uint8))
    assert np.array_equal(dataset.load(), np.ones(3, np.uint8)) and _files(tmp_path) == ["images.npy"]


def test_a_missing_array_is_a_dataset_error_naming_the_file(tmp_path):
    dataset = NumpyArrayDataset(filepath=str(tmp_path / "images.npy"))
    assert not dataset.exists()
    with pytest.raises(DatasetError, match=r"images\.npy"):
        dataset.load()


def test_a_checkpoint_round_trips_through_its_dataset(tmp_path):
    dataset = CheckpointDataset(filepath=str(tmp_path / "unet_frm.pt"))
    dataset.save(tiny_checkpoint())
    loaded = dataset.load()
    assert loaded.arch == "unet_frm" and loaded.image_size == (16, 16) and dataset.exists()
    assert _files(tmp_path) == ["unet_frm.pt"]


@pytest.mark.parametrize(
    "write, problem",
    [
        (None, r"^checkpoint not found: .*unet_frm\.pt$"),
        (lambda path: path.write_text("junk"), r"^.*unet_frm\.pt is not a PixelHeal checkpoint"),
        (lambda path: torch.save({"format": TRAIN_STATE_FORMAT}, path), r"^.*unet_frm\.pt is a training resume state"),
    ],
)
def test_checkpoint_load_errors_are_one_line_naming_the_file(tmp_path, write, problem):
    path = tmp_path / "unet_frm.pt"
    if write is not None:
        write(path)
    with pytest.raises(DatasetError, match=problem) as error:
        CheckpointDataset(filepath=str(path)).load()
    assert "\n" not in str(error.value)


def test_the_train_state_dataset_derives_its_file_from_the_checkpoint_path(tmp_path):
    dataset = TrainStateDataset(filepath=str(tmp_path / "gan.pt"))
    assert dataset.load() == tmp_path / "gan.state.pt"
    assert dataset.exists()  # nothing to resume yet is not a missing input
    with pytest.raises(DatasetError, match="writes its resume state itself"):
        dataset.save(tmp_path)


def _node_inputs(n: int = 24):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8)
    masks = (rng.random((n, 1, 8, 8)) < 0.3).astype(np.uint8)
    return images, masks, {"train": list(range(16)), "val": list(range(16, 20)), "test": list(range(20, n))}


MODEL = {"kind": "unet_frm", "widths": [4, 8]}
TRAINING = {"epochs": 2, "batch_size": 8, "device": "cpu", "flip": False}


def test_the_train_node_keeps_its_resume_state_at_the_derived_path(tmp_path):
    images, masks, splits = _node_inputs()
    state = TrainStateDataset(filepath=str(tmp_path / "unet_frm.pt")).load()
    checkpoint, _ = train_model(images, masks, splits, MODEL, TRAINING, state)
    assert torch.load(state, weights_only=True)["format"] == TRAIN_STATE_FORMAT
    assert (checkpoint.arch, checkpoint.image_size, checkpoint.training) == ("unet_frm", (8, 8), TRAINING)
    assert [r["epoch"] for r in checkpoint.history] == [1, 2]
    CheckpointDataset(filepath=str(tmp_path / "unet_frm.pt")).save(checkpoint)
    assert read_checkpoint(tmp_path / "unet_frm.pt").history == checkpoint.history
    resumed, _ = train_model(images, masks, splits, MODEL, TRAINING | {"resume": True}, state)
    assert resumed.history == checkpoint.history  # every epoch was done: resumed at the end, nothing retrained


def test_a_state_path_parameter_overrides_the_derived_one(tmp_path):
    images, masks, splits = _node_inputs()
    override = tmp_path / "elsewhere" / "state.pt"
    train_model(
        images,
        masks,
        splits,
        MODEL,
        TRAINING | {"epochs": 1, "state_path": str(override)},
        tmp_path / "unet_frm.state.pt",
    )
    assert override.is_file() and not (tmp_path / "unet_frm.state.pt").exists()


def test_a_mistyped_training_key_stops_the_node_naming_it(tmp_path):
    images, masks, splits = _node_inputs()
    with pytest.raises(ValueError, match=r"^unet_frm\.training\.epoch: unknown parameter"):
        train_model(images, masks, splits, MODEL, {"epoch": 2}, tmp_path / "s.pt")
