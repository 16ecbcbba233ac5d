"""The inpaint pipeline: registry wiring, its parameter block, its node, and `kedro run --pipeline=inpaint`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from pixelheal.pipeline_registry import register_pipelines
from pixelheal.pipelines.inpaint.nodes import InpaintParameters, inpaint_images, inpaint_parameters
from tests.inference.helpers import box_mask, checksums, make_folder, write_checkpoint
from tests.pipelines.kedro_project import kedro, make_project

NAMES = {"cat/0001.jpg": (32, 32), "cat/0002.png": (50, 70), "dog/0001.png": (12, 20)}


def _block(folder: Path, **changes: Any) -> dict[str, Any]:
    """An `inpaint:` block over `folder` (images/, masks/, out/, a unet_frm.pt checkpoint)."""
    return {
        "model": "unet_frm",
        "models_dir": str(folder),
        "images_dir": str(folder / "images"),
        "masks_dir": str(folder / "masks"),
        "output_dir": str(folder / "out"),
        "device": "cpu",
        "batch_size": 4,
        "seed": 0,
    } | changes


@pytest.fixture
def folder(tmp_path) -> Path:
    write_checkpoint(tmp_path / "unet_frm.pt")
    make_folder(tmp_path, {"a.png": (24, 24)})
    return tmp_path


def _refused(folder: Path, block: dict[str, Any], message: str) -> None:
    """The node stops with exactly `message` (its first line) and changes no file under `folder`."""
    before = checksums(folder)
    with pytest.raises(ValueError) as error:
        inpaint_images(block)
    assert str(error.value).splitlines()[0] == message
    assert checksums(folder) == before


def test_inpaint_is_registered_but_not_part_of_the_default_run():
    pipelines = register_pipelines()
    assert [node.name for node in pipelines["inpaint"].nodes] == ["inpaint_images"]
    assert "inpaint_images" not in {node.name for node in pipelines["__default__"].nodes}
    assert pipelines["inpaint"].inputs() == {"params:inpaint"}  # one block, declared by InpaintParameters


def test_the_base_block_is_declared_and_overwrite_defaults_to_false(folder):
    base = Path(__file__).resolve().parents[2] / "conf" / "base" / "parameters_inpaint.yml"
    assert inpaint_parameters(yaml.safe_load(base.read_text())["inpaint"]).overwrite is False
    assert inpaint_parameters(_block(folder)) == InpaintParameters(**_block(folder), overwrite=False)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"batch_size": "abc"}, "inpaint.batch_size: expected an integer, got 'abc'"),
        ({"batch_size": 0}, "inpaint.batch_size: must be at least 1, got 0"),
        ({"overwrite": "yes"}, "inpaint.overwrite: expected true or false, got 'yes'"),
        ({"overwite": True}, "inpaint.overwite: unknown parameter; valid: "),
    ],
)
def test_a_bad_parameter_is_named_in_one_line(folder, changes, message):
    with pytest.raises(ValueError) as error:
        inpaint_parameters(_block(folder, **changes))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_node_resolves_an_architecture_key_in_models_dir(folder):
    inpaint_images(_block(folder))
    assert (folder / "out" / "a.png").is_file()


def test_node_names_the_missing_checkpoint(folder):
    message = f"inpaint.model: no checkpoint for architecture 'unet_aspp' at {folder / 'unet_aspp.pt'}; "
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        inpaint_images(_block(folder, model="unet_aspp"))
    assert not (folder / "out").exists()


def test_node_names_inpaint_output_dir_when_it_is_inside_the_masks(folder):
    out = folder / "masks" / "out"
    message = (
        f"inpaint.output_dir: {out} is inside masks_dir {folder / 'masks'}; "
        "choose a folder apart from the inputs, so that none is overwritten or read back as input"
    )
    _refused(folder, _block(folder, output_dir=str(out)), message)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_names_inpaint_device(folder):
    before = checksums(folder)
    with pytest.raises(ValueError, match=r"^inpaint\.device: ") as error:
        inpaint_images(_block(folder, device="cuda"))
    assert "\n" not in str(error.value)
    assert checksums(folder) == before


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> tuple[Path, Path, Any]:
    """A tiny project and one `kedro run --pipeline=inpaint` of a checkpoint path over three images."""
    tmp = tmp_path_factory.mktemp("inpaint")
    root = make_project(tmp / "project")
    write_checkpoint(tmp / "tiny.pt")
    make_folder(tmp, NAMES)
    return root, tmp, _run_inpaint(root, str(tmp / "tiny.pt"), tmp)


def _run_inpaint(root: Path, model: str, folder: Path) -> Any:
    params = (
        f"inpaint.model={model},inpaint.images_dir={folder / 'images'},inpaint.masks_dir={folder / 'masks'},"
        f"inpaint.output_dir={folder / 'out'},inpaint.device=cpu"
    )
    return kedro(root, "run", "--pipeline=inpaint", f"--params={params}")


@pytest.mark.slow
def test_kedro_run_inpaint_writes_one_png_per_image_with_known_pixels_unchanged(first_run):
    root, folder, result = first_run
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = sorted(p.relative_to(folder / "out").as_posix() for p in (folder / "out").rglob("*.png"))
    assert outputs == ["cat/0001.png", "cat/0002.png", "dog/0001.png"]
    for name in NAMES:
        before = np.asarray(Image.open(folder / "images" / name).convert("RGB"))
        after = np.asarray(Image.open((folder / "out" / name).with_suffix(".png")))
        known = box_mask(*before.shape[:2]) == 0
        assert after.shape == before.shape and np.array_equal(after[known], before[known])
    assert not (root / "data" / "07_model_output").exists()  # nothing went to the default output_dir


@pytest.mark.slow
def test_kedro_run_inpaint_again_refuses_to_replace_the_outputs(first_run):
    root, folder, _ = first_run
    before = checksums(folder / "images", folder / "masks", folder / "out", folder / "tiny.pt")
    result = _run_inpaint(root, str(folder / "tiny.pt"), folder)
    output = result.stderr + result.stdout
    assert result.returncode != 0 and "Traceback" not in output
    assert (
        f"inpaint.output_dir: {folder / 'out'} already holds 3 file(s) this run would write; "
        "set overwrite: true to replace them, or choose another folder:"
    ) in output
    assert str(folder / "out" / "dog" / "0001.png") in output
    assert checksums(folder / "images", folder / "masks", folder / "out", folder / "tiny.pt") == before
