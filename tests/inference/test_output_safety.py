"""The output folder of `inpaint_folder`: apart from the inputs, writable, and never replacing files unasked.

Every refusal is checked to come before anything is written: the sha256 of every file under the
test folder (images, masks, checkpoint, output folder) is the same before and after.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from pixelheal.inference import Inpainter, inpaint_folder, load_inpainter
from tests.inference.helpers import box_mask, checksums, make_folder, write_checkpoint


@pytest.fixture
def inpainter(tmp_path) -> Inpainter:
    return load_inpainter(write_checkpoint(tmp_path / "unet_frm.pt"))


@pytest.fixture
def inputs(tmp_path) -> tuple[Path, Path]:
    return make_folder(tmp_path / "in", {"a.png": (16, 16), "cat/b.png": (16, 16)})


def _refused(tmp_path: Path, pattern: str, *args, **kwargs) -> None:
    """`inpaint_folder(*args, **kwargs)` raises a ValueError matching `pattern` and changes no file."""
    before = checksums(tmp_path)
    with pytest.raises(ValueError, match=pattern):
        inpaint_folder(*args, **kwargs)
    assert checksums(tmp_path) == before
    assert [p.name for p in tmp_path.rglob(".*")] == []  # no staging or probe file left behind


@pytest.mark.parametrize(
    "output, relation, key",
    [
        ("masks", "is", "masks_dir"),
        ("masks/sub", "is inside", "masks_dir"),
        ("images/../masks", "is", "masks_dir"),
        ("images", "is", "images_dir"),
        ("images/cat/out", "is inside", "images_dir"),
        (".", "contains", "images_dir"),
    ],
)
def test_an_output_dir_overlapping_an_input_folder_is_refused_naming_both(
    inpainter, inputs, tmp_path, output, relation, key
):
    images, masks = inputs
    out = tmp_path / "in" / output
    folder = re.escape(str(images if key == "images_dir" else masks))
    pattern = rf"^output_dir: {re.escape(str(out))} {relation} {key} {folder}; choose a folder apart"
    _refused(tmp_path, pattern, inpainter, images, masks, out)


def test_an_output_dir_holding_the_one_mask_file_is_refused(inpainter, inputs, tmp_path):
    images, _ = inputs
    (tmp_path / "one").mkdir()
    Image.fromarray(box_mask(16, 16) * 255).save(tmp_path / "one" / "mask.png")
    pattern = rf"^output_dir: {re.escape(str(tmp_path / 'one'))} contains masks_dir .*mask\.png;"
    _refused(tmp_path, pattern, inpainter, images, tmp_path / "one" / "mask.png", tmp_path / "one")


def test_an_output_dir_inside_a_linked_image_folder_is_refused(inpainter, inputs, tmp_path):
    images, masks = inputs
    elsewhere, _ = make_folder(tmp_path / "elsewhere", {"dog.png": (16, 16)}, masks=False)
    (images / "linked").symlink_to(elsewhere, target_is_directory=True)  # its images are read as linked/dog.png
    (masks / "linked").mkdir()
    Image.fromarray(box_mask(16, 16) * 255).save(masks / "linked" / "dog.png")
    pattern = rf"is inside {re.escape(str(elsewhere.resolve()))}, which images_dir {re.escape(str(images))} reads"
    _refused(tmp_path, pattern, inpainter, images, masks, elsewhere / "out")


def test_files_an_output_would_replace_are_listed_and_kept(inpainter, inputs, tmp_path):
    images, masks = inputs
    out = tmp_path / "out"
    (out / "cat").mkdir(parents=True)
    (out / "a.png").write_bytes(b"the user's own a.png")
    (out / "cat" / "b.png").write_bytes(b"the user's own b.png")
    (out / "notes.txt").write_text("not an output")
    pattern = (
        rf"^output_dir: {re.escape(str(out))} already holds 2 file\(s\) this run would write; "
        rf"set overwrite: true to replace them, or choose another folder:\n  .*a\.png\n  .*cat/b\.png$"
    )
    _refused(tmp_path, pattern, inpainter, images, masks, out)


def test_overwrite_replaces_only_the_outputs(inpainter, inputs, tmp_path):
    images, masks = inputs
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"old")
    (out / "notes.txt").write_text("not an output")
    written = inpaint_folder(inpainter, images, masks, out, overwrite=True)
    assert sorted(p.relative_to(out).as_posix() for p in written) == ["a.png", "cat/b.png"]
    assert Image.open(out / "a.png").size == (16, 16) and (out / "notes.txt").read_text() == "not an output"


def test_a_folder_where_an_output_goes_is_refused_even_with_overwrite(inpainter, inputs, tmp_path):
    images, masks = inputs
    (tmp_path / "out" / "a.png").mkdir(parents=True)
    pattern = r"^output_dir: .*out has 1 folder\(s\) where outputs would be written:\n  .*a\.png$"
    _refused(tmp_path, pattern, inpainter, images, masks, tmp_path / "out", overwrite=True)


@pytest.mark.parametrize(
    "file, output, message",
    [
        ("out", "out", "{out} is a file, not a folder"),
        ("out", "out/sub", "{out}: {file} is a file, not a folder"),
        ("out/cat", "out", "{out}: {file} is a file, not a folder"),  # where cat/b.png must go
    ],
)
def test_an_output_dir_that_is_or_needs_a_file_is_refused(inpainter, inputs, tmp_path, file, output, message):
    images, masks = inputs
    (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / file).write_text("a user file")
    expected = message.format(out=tmp_path / output, file=tmp_path / file)
    _refused(tmp_path, f"^output_dir: {re.escape(expected)}$", inpainter, images, masks, tmp_path / output)


def test_a_read_only_output_dir_is_refused_before_anything_is_inpainted(inpainter, inputs, tmp_path, monkeypatch):
    images, masks = inputs
    out = tmp_path / "out"
    out.mkdir()
    if os.geteuid() == 0:  # root writes anyway: simulate what a read-only mount answers
        real_mkstemp = tempfile.mkstemp

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and Path(dir) == out:
                raise PermissionError(errno.EACCES, "Permission denied")
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(inpainter.model, "forward", lambda *args: pytest.fail("inpainted before the check"))
    out.chmod(0o555)
    try:
        _refused(
            tmp_path,
            rf"^output_dir: {re.escape(str(out))} is not writable \(Permission denied\)$",
            inpainter,
            images,
            masks,
            out,
        )
    finally:
        out.chmod(0o755)


def test_a_batch_size_below_one_names_the_argument(inpainter, inputs, tmp_path):
    images, masks = inputs
    _refused(tmp_path, "^batch_size: must be at least 1, got 0$", inpainter, images, masks, tmp_path / "out", 0)
