"""The one checkpoint format: round trip, version and foreign-file refusal, the derived resume-state path."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import pytest
import torch

from pixelheal.models import from_checkpoint, load
from pixelheal.models.checkpoint import (
    FORMAT,
    TRAIN_STATE_FORMAT,
    VERSION,
    is_train_state_path,
    read_checkpoint,
    save_checkpoint,
    train_state_path,
)
from tests.inference.helpers import tiny_checkpoint


def test_a_saved_checkpoint_reads_back_field_by_field(tmp_path):
    original = tiny_checkpoint(in_channels=1, image_size=(12, 20))
    save_checkpoint(original, tmp_path / "unet_frm.pt")
    read = read_checkpoint(tmp_path / "unet_frm.pt")
    assert (read.format, read.version) == (FORMAT, VERSION)
    for name in ("arch", "hparams", "epoch", "metrics", "history", "training", "image_size"):
        assert getattr(read, name) == getattr(original, name), name
    assert read.channels == 1
    assert read.model.keys() == original.model.keys()
    assert all(torch.equal(read.model[k], original.model[k]) for k in original.model)


def test_the_file_is_a_plain_dict_with_the_format_fields(tmp_path):
    save_checkpoint(tiny_checkpoint(), tmp_path / "c.pt")
    stored = torch.load(tmp_path / "c.pt", weights_only=True)
    assert set(stored) == {
        "format",
        "version",
        "arch",
        "hparams",
        "model",
        "epoch",
        "metrics",
        "history",
        "training",
        "image_size",
    }
    assert stored["image_size"] == [16, 16]  # a list, as before the format was versioned


def test_load_rebuilds_the_trained_model_ready_for_use(tmp_path):
    checkpoint = tiny_checkpoint()
    save_checkpoint(checkpoint, tmp_path / "c.pt")
    model, expected = load(tmp_path / "c.pt"), from_checkpoint(checkpoint)
    x, m = torch.rand(2, 3, 16, 16), (torch.rand(2, 1, 16, 16) < 0.3).float()
    assert not model.training
    with torch.no_grad():
        assert torch.equal(model.inpaint(x, m), expected.inpaint(x, m))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint not found: .*nope\.pt"):
        read_checkpoint(tmp_path / "nope.pt")


class Payload:
    """A stand-in for a malicious object: unpickling it would run code."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _old(tmp_path: Path) -> Path:
    stored = {k: v for k, v in tiny_checkpoint().to_dict().items() if k not in ("format", "version")}
    torch.save(stored, tmp_path / "old.pt")
    return tmp_path / "old.pt"


UNREADABLE = "not a PixelHeal checkpoint: torch cannot read it"


@pytest.mark.parametrize(
    "write, problem",
    [
        (lambda path: path.write_text("hello"), UNREADABLE),
        (lambda path: torch.save({"weights": Payload()}, path), UNREADABLE),  # a foreign pickle: refused, never run
        (lambda path: path.write_bytes(pickle.dumps(Payload(), protocol=2)), UNREADABLE),
        (lambda path: torch.save([1, 2], path), r"not a PixelHeal checkpoint \(it holds a list\)"),
        (lambda path: torch.save({"state_dict": {}}, path), r"not a PixelHeal checkpoint \(format None\)"),
        (lambda path: torch.save({"format": TRAIN_STATE_FORMAT, "epochs_done": 1}, path), "training resume state"),
        (
            lambda path: torch.save(tiny_checkpoint().to_dict() | {"version": VERSION + 1}, path),
            f"format version {VERSION + 1}; this PixelHeal reads version {VERSION}",
        ),
        (lambda path: torch.save({"format": FORMAT, "version": VERSION, "arch": "unet_frm"}, path), "lacks"),
    ],
)
def test_foreign_or_unsupported_files_are_refused_in_one_line_naming_them(tmp_path, write, problem):
    path = tmp_path / "file.pt"
    write(path)
    with pytest.raises(ValueError, match=problem) as error:
        read_checkpoint(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_checkpoint_from_before_the_version_field_says_how_to_get_a_new_one(tmp_path):
    with pytest.raises(ValueError, match=r"before format versioning.*kedro run --pipeline=train_unet_frm"):
        read_checkpoint(_old(tmp_path))


def test_a_failed_save_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(tiny_checkpoint(), path)
    before = path.read_bytes()

    def broken_save(obj, f):
        Path(f).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tiny_checkpoint(image_size=(8, 8)), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_the_resume_state_lives_beside_its_checkpoint():
    assert train_state_path("data/06_models/unet_frm.pt") == Path("data/06_models/unet_frm.state.pt")
    assert is_train_state_path(train_state_path(Path("models/gan.pt")))
    assert not is_train_state_path(Path("models/gan.pt"))


def _edited(tmp_path: Path, **changes) -> Path:
    """`tiny_checkpoint` saved with some fields replaced, as a file edited or assembled by hand would be."""
    path = tmp_path / "unet_frm.pt"
    torch.save(tiny_checkpoint().to_dict() | changes, path)
    return path


def _first_tensor() -> str:
    return next(iter(tiny_checkpoint().model))


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"hparams": {"widths": [8, 8, 16], "in_channels": 3}}, r"the weights do not match the hyper-parameters: "),
        (
            {"hparams": {"widths": [4, 8, 16], "in_channels": 1}},
            r"has shape \[4, 4, 3, 3\], the model expects \[4, 2, 3, 3\]",
        ),
        ({"model": {}}, r"the weights do not match the hyper-parameters: \S+ is missing"),
        ({"model": tiny_checkpoint().model | {"extra.weight": torch.zeros(1)}}, r"extra\.weight is not a tensor of"),
        ({"model": [1, 2]}, r"the weights are a list, not a mapping of tensors"),
        ({"hparams": {"widths": [4, 8, 16], "in_channels": 3, "depth": 2}}, r"hparams\.depth: unknown parameter"),
        ({"arch": "unet_xl"}, r"unknown architecture 'unet_xl'; known: \["),
    ],
)
def test_a_checkpoint_whose_parts_do_not_fit_is_one_line_naming_the_file(tmp_path, changes, problem):
    path = _edited(tmp_path, **changes)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match=problem) as error:
        load(path)
    message = str(error.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_mismatch_names_the_first_tensor_that_does_not_fit(tmp_path):
    path = _edited(tmp_path, hparams={"widths": [8, 8, 16], "in_channels": 3})
    with pytest.raises(ValueError) as error:
        from_checkpoint(read_checkpoint(path))
    first = _first_tensor()
    assert f"{first} has shape [4, " in str(error.value) and "the model expects [8, " in str(error.value)
