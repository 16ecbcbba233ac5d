"""The inpaint pipeline: registry wiring, its node, and `kedro run --pipeline=inpaint` through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelheal.pipeline_registry import register_pipelines
from pixelheal.pipelines.inpaint.nodes import inpaint_images
from tests.inference.helpers import box_mask, make_folder, write_checkpoint
from tests.pipelines.kedro_project import kedro, make_project

NODE_DEFAULTS = {"models_dir": "unused", "device": "cpu", "batch_size": 4, "seed": 0}


def test_inpaint_is_registered_but_not_part_of_the_default_run():
    pipelines = register_pipelines()
    assert [node.name for node in pipelines["inpaint"].nodes] == ["inpaint_images"]
    assert "inpaint_images" not in {node.name for node in pipelines["__default__"].nodes}
    assert all(name.startswith("params:inpaint.") for name in pipelines["inpaint"].inputs())


def test_node_resolves_an_architecture_key_in_models_dir(tmp_path):
    write_checkpoint(tmp_path / "unet_frm.pt")
    images, masks = make_folder(tmp_path, {"a.png": (24, 24)})
    inpaint_images(
        "unet_frm",
        **NODE_DEFAULTS | {"models_dir": str(tmp_path)},
        images_dir=str(images),
        masks_dir=str(masks),
        output_dir=str(tmp_path / "out"),
    )
    assert (tmp_path / "out" / "a.png").is_file()


def test_node_names_the_missing_checkpoint(tmp_path):
    images, masks = make_folder(tmp_path, {"a.png": (24, 24)})
    with pytest.raises(ValueError, match="unet_aspp.pt"):
        inpaint_images(
            "unet_aspp",
            **NODE_DEFAULTS | {"models_dir": str(tmp_path)},
            images_dir=str(images),
            masks_dir=str(masks),
            output_dir=str(tmp_path / "out"),
        )
    assert not (tmp_path / "out").exists()


def _run_inpaint(root: Path, model: str, folder: Path) -> object:
    params = (
        f"inpaint.model={model},inpaint.images_dir={folder / 'images'},inpaint.masks_dir={folder / 'masks'},"
        f"inpaint.output_dir={folder / 'out'},inpaint.device=cpu"
    )
    return kedro(root, "run", "--pipeline=inpaint", f"--params={params}")


@pytest.mark.slow
def test_kedro_run_inpaint_writes_one_png_per_image_with_known_pixels_unchanged(tmp_path):
    root = make_project(tmp_path / "project")
    checkpoint = write_checkpoint(tmp_path / "tiny.pt")
    names = {"cat/0001.jpg": (32, 32), "cat/0002.png": (50, 70), "dog/0001.png": (12, 20)}
    images, _ = make_folder(tmp_path, names)
    result = _run_inpaint(root, str(checkpoint), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert outputs == ["cat/0001.png", "cat/0002.png", "dog/0001.png"]
    for name in names:
        before = np.asarray(Image.open(images / name).convert("RGB"))
        after = np.asarray(Image.open((tmp_path / "out" / name).with_suffix(".png")))
        known = box_mask(*before.shape[:2]) == 0
        assert after.shape == before.shape and np.array_equal(after[known], before[known])
    assert not (root / "data" / "07_model_output").exists()  # nothing went to the default output_dir
