"""Inpainting a folder: pairing images with mask files, validating everything first, all-or-nothing output."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelheal.inference import Inpainter, inpaint_folder, load_inpainter
from tests.conftest import CIFAR_SAMPLE
from tests.inference.helpers import box_mask, make_folder, write_checkpoint


@pytest.fixture
def inpainter(tmp_path) -> Inpainter:
    return load_inpainter(write_checkpoint(tmp_path / "unet_frm.pt"))


def _hidden(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_inpaint_folder_keeps_relative_names_sizes_and_known_pixels(inpainter, tmp_path):
    images, masks = make_folder(tmp_path, {"cat/0001.png": (20, 30), "cat/0002.jpg": (16, 16), "dog/a.bmp": (40, 24)})
    written = inpaint_folder(inpainter, images, masks, tmp_path / "out", batch_size=2)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
        "cat/0001.png",
        "cat/0002.png",
        "dog/a.png",
    ]
    for source, out in [("cat/0001.png", "cat/0001.png"), ("cat/0002.jpg", "cat/0002.png"), ("dog/a.bmp", "dog/a.png")]:
        before = np.asarray(Image.open(images / source).convert("RGB"))
        after = np.asarray(Image.open(tmp_path / "out" / out))
        known = box_mask(*before.shape[:2]) == 0
        assert after.shape == before.shape and np.array_equal(after[known], before[known])
    assert _hidden(tmp_path) == []  # no staging left behind


def test_one_mask_file_serves_every_image(inpainter, tmp_path):
    images, _ = make_folder(tmp_path, {"a.png": (16, 16), "b.png": (16, 16)}, masks=False)
    Image.fromarray(box_mask(16, 16) * 255).save(tmp_path / "one.png")
    assert len(inpaint_folder(inpainter, images, tmp_path / "one.png", tmp_path / "out")) == 2


def test_every_missing_mask_is_listed_and_nothing_is_written(inpainter, tmp_path):
    images, masks = make_folder(tmp_path, {"a.png": (16, 16), "b/c.png": (16, 16), "d.jpg": (16, 16)})
    (masks / "b" / "c.png").unlink()
    (masks / "d.png").unlink()
    with pytest.raises(ValueError, match="of 2 image") as error:
        inpaint_folder(inpainter, images, masks, tmp_path / "out")
    assert str(images / "b" / "c.png") in str(error.value) and str(images / "d.jpg") in str(error.value)
    assert not (tmp_path / "out").exists()


def test_mask_size_mismatch_names_the_file_and_nothing_is_written(inpainter, tmp_path):
    images, masks = make_folder(tmp_path, {"a.png": (16, 16), "b.png": (16, 16)})
    Image.fromarray(box_mask(16, 20) * 255).save(masks / "b.png")
    with pytest.raises(ValueError, match=r"b\.png: mask is 20x16 but its image .*b\.png is 16x16"):
        inpaint_folder(inpainter, images, masks, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_truncated_image_is_found_before_anything_is_inpainted(inpainter, tmp_path):
    images, masks = make_folder(tmp_path, {"a.png": (16, 16), "b.png": (16, 16)})
    (images / "b.png").write_bytes((images / "b.png").read_bytes()[:60])  # truncated: header only
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match=r"^1 image/mask problem.*\n.*cannot read image file .*b\.png"):
        inpaint_folder(inpainter, images, masks, tmp_path / "out", batch_size=1)
    assert list((tmp_path / "out").iterdir()) == []
    assert _hidden(tmp_path) == []


def test_a_failure_mid_run_leaves_the_output_folder_untouched(inpainter, tmp_path, monkeypatch):
    images, masks = make_folder(tmp_path, {"a.png": (16, 16), "b.png": (16, 16)})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.png").write_bytes(b"kept")
    calls = {"n": 0}
    original = inpainter.model.forward

    def fail_on_second_batch(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("out of memory")
        return original(*args)

    monkeypatch.setattr(inpainter.model, "forward", fail_on_second_batch)
    with pytest.raises(RuntimeError, match="out of memory"):
        inpaint_folder(inpainter, images, masks, tmp_path / "out", batch_size=1)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["old.png"]
    assert _hidden(tmp_path) == []


@pytest.mark.parametrize(
    "setup, problem",
    [
        (lambda root: (root / "images").mkdir(), "holds no images"),
        (lambda root: None, "is not a folder"),
    ],
)
def test_empty_or_missing_images_dir_is_refused(inpainter, tmp_path, setup, problem):
    setup(tmp_path)
    with pytest.raises(ValueError, match=f"images_dir: .*{problem}"):
        inpaint_folder(inpainter, tmp_path / "images", tmp_path, tmp_path / "out")


def test_images_sharing_a_name_and_output_inside_the_inputs_are_refused(inpainter, tmp_path):
    images, masks = make_folder(tmp_path, {"a.png": (16, 16), "a.jpg": (16, 16)})
    with pytest.raises(ValueError, match="share one mask"):
        inpaint_folder(inpainter, images, masks, tmp_path / "out")
    (images / "a.jpg").unlink()
    with pytest.raises(ValueError, match="output_dir"):
        inpaint_folder(inpainter, images, masks, images / "inpainted")


def test_inpaint_folder_on_real_cifar_images(inpainter, tmp_path):
    test_split = CIFAR_SAMPLE / "test"
    if not test_split.is_dir():
        pytest.skip(f"shared CIFAR-10 sample not found at {test_split}")
    files = sorted(test_split.rglob("*.jpg"))[:3]
    images = tmp_path / "images"
    for path in files:
        (images / path.parent.name).mkdir(parents=True, exist_ok=True)
        (images / path.parent.name / path.name).write_bytes(path.read_bytes())
    Image.fromarray(box_mask(32, 32) * 255).save(tmp_path / "mask.png")
    written = inpaint_folder(inpainter, images, tmp_path / "mask.png", tmp_path / "out")
    assert len(written) == 3 and all(Image.open(p).size == (32, 32) for p in written)


def test_a_bad_shared_mask_is_reported_once(inpainter, tmp_path):
    images, _ = make_folder(tmp_path, {"a.png": (16, 16), "b.png": (16, 16), "c.png": (16, 16)}, masks=False)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "empty.png")
    with pytest.raises(ValueError, match=r"^1 image/mask problem.*\n.*empty\.png: mask is empty"):
        inpaint_folder(inpainter, images, tmp_path / "empty.png", tmp_path / "out")


def test_soft_edged_masks_are_inpainted_with_one_warning_per_file(inpainter, tmp_path, caplog):
    images, masks = make_folder(tmp_path, {"a.png": (16, 16)})
    soft = box_mask(16, 16) * 255
    soft[0, 0] = 100  # an anti-aliased edge pixel: below 128, so known
    Image.fromarray(soft).save(masks / "a.png")
    with caplog.at_level(logging.WARNING, logger="pixelheal.masks.files"):
        (written,) = inpaint_folder(inpainter, images, masks, tmp_path / "out")
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert np.asarray(Image.open(written))[0, 0].tolist() == np.asarray(Image.open(images / "a.png"))[0, 0].tolist()
