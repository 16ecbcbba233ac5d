"""Inpainting user images of any size: resize, inpaint, resize back, composite; folder I/O and its errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelheal.inference import (
    Inpainter,
    binarize_mask,
    inpaint_folder,
    inpaint_image,
    inpaint_samples,
    load_inpainter,
    read_mask,
    resolve_checkpoint,
)
from pixelheal.models import InpaintingModel, make_model

CIFAR_TEST = Path(__file__).resolve().parents[1] / "../shared/datasets/cifar10_sample/test"


def write_checkpoint(path: Path, in_channels: int = 3, image_size: tuple[int, int] | None = (16, 16)) -> Path:
    """A randomly initialised tiny unet_frm checkpoint, as the train node writes it."""
    torch.manual_seed(0)
    hparams = {"widths": [4, 8, 16], "in_channels": in_channels}
    checkpoint = {"arch": "unet_frm", "hparams": hparams, "model": make_model("unet_frm", **hparams).state_dict(),
                  "epoch": 1, "metrics": {}, "history": []}
    if image_size is not None:
        checkpoint["image_size"] = list(image_size)
    torch.save(checkpoint, path)
    return path


@pytest.fixture
def inpainter(tmp_path) -> Inpainter:
    return load_inpainter(write_checkpoint(tmp_path / "unet_frm.pt"))


def random_image(rng: np.random.Generator, height: int, width: int, channels: int = 3) -> Image.Image:
    values = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(values[..., 0] if channels == 1 else values)


def box_mask(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4: height // 2, width // 3: 2 * width // 3] = 1
    return mask


@pytest.mark.parametrize("size", [(16, 16), (37, 53), (9, 12), (64, 20)])
def test_output_has_the_input_size_and_its_known_pixels(inpainter, size):
    image, mask = random_image(np.random.default_rng(0), *size), box_mask(*size)
    out = inpaint_image(inpainter, image, mask)
    before, after = np.asarray(image), np.asarray(out)
    assert out.size == image.size and out.mode == "RGB"
    assert np.array_equal(after[mask == 0], before[mask == 0])
    assert (after[mask == 1] != before[mask == 1]).any()


@pytest.mark.parametrize("size", [(40, 72), (10, 13)])
def test_damage_under_the_hole_does_not_leak_into_the_result(inpainter, size):
    image, mask = np.asarray(random_image(np.random.default_rng(1), *size)).copy(), box_mask(*size)
    damaged = image.copy()
    damaged[mask == 1] = 255
    clean = inpaint_image(inpainter, Image.fromarray(image), mask)
    assert np.array_equal(np.asarray(inpaint_image(inpainter, Image.fromarray(damaged), mask))[mask == 1],
                          np.asarray(clean)[mask == 1])


def test_mask_picture_uses_255_as_hole_and_transparency_as_known(inpainter):
    image = random_image(np.random.default_rng(2), 20, 24)
    rgba = np.zeros((20, 24, 4), np.uint8)
    rgba[5:10, 5:10] = 255  # white, opaque strokes on a transparent layer
    out = np.asarray(inpaint_image(inpainter, image, Image.fromarray(rgba, "RGBA")))
    known = np.ones((20, 24), bool)
    known[5:10, 5:10] = False
    assert np.array_equal(out[known], np.asarray(image)[known])
    assert (out[5:10, 5:10] != np.asarray(image)[5:10, 5:10]).any()


def test_grayscale_model_turns_colour_input_into_grayscale(tmp_path):
    gray = load_inpainter(write_checkpoint(tmp_path / "gray.pt", in_channels=1))
    image = random_image(np.random.default_rng(3), 24, 24)
    out = inpaint_image(gray, image, box_mask(24, 24))
    assert out.mode == "L" and out.size == (24, 24)
    known = box_mask(24, 24) == 0
    assert np.array_equal(np.asarray(out)[known], np.asarray(image.convert("L"))[known])


def test_mask_of_another_size_is_refused(inpainter):
    with pytest.raises(ValueError, match="mask is 10x8 but the image is 12x8"):
        inpaint_image(inpainter, random_image(np.random.default_rng(0), 8, 12), box_mask(8, 10))


def test_binarize_maps_255_to_hole_and_thresholds_soft_edges_with_a_warning(caplog):
    assert np.array_equal(binarize_mask(np.array([[0, 255], [255, 0]]), "m.png"), [[0, 1], [1, 0]])
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        mask = binarize_mask(np.array([[0, 127], [128, 255]]), "m.png")
    assert np.array_equal(mask, [[0, 0], [1, 1]])
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


@pytest.mark.parametrize("values, problem", [
    ([[0, 1], [1, 0]], "no value >= 128"),  # a 0/1 mask saved as PNG: ambiguous, refused
    ([[0, 0], [0, 0]], "empty"),
    ([[255, 255], [255, 255]], "whole image"),
])
def test_ambiguous_or_useless_masks_are_refused(tmp_path, values, problem):
    path = tmp_path / "m.png"
    Image.fromarray(np.array(values, np.uint8)).save(path)
    with pytest.raises(ValueError, match=problem) as error:
        read_mask(path)
    assert str(path) in str(error.value)


def test_resolve_checkpoint_accepts_a_key_or_a_path_and_names_what_is_missing(tmp_path):
    path = write_checkpoint(tmp_path / "unet_frm.pt")
    assert resolve_checkpoint("unet_frm", tmp_path) == path
    assert resolve_checkpoint(str(path), tmp_path / "elsewhere") == path
    with pytest.raises(ValueError, match=r"unet_aspp\.pt.*kedro run --pipeline=train_unet_aspp"):
        resolve_checkpoint("unet_aspp", tmp_path)
    with pytest.raises(ValueError, match="neither an architecture"):
        resolve_checkpoint("unet_nope", tmp_path)


def test_checkpoint_without_image_size_is_refused(tmp_path):
    path = write_checkpoint(tmp_path / "old.pt", image_size=None)
    with pytest.raises(ValueError, match="image_size"):
        load_inpainter(path)


class CoinFlips(InpaintingModel):
    """A stand-in sampling architecture: every sample is uniform noise."""

    def forward(self, images, masks):
        return torch.rand_like(images)

    def inpaint_samples(self, images, masks, n_samples):
        return [self.inpaint(images, masks) for _ in range(n_samples)]


def test_samples_are_diverse_seeded_and_leave_the_global_rng_alone():
    sampler = Inpainter(CoinFlips(), "coin", (8, 8), 3, torch.device("cpu"))
    image, mask = random_image(np.random.default_rng(0), 8, 8), box_mask(8, 8)
    state = torch.random.get_rng_state()
    first = [np.asarray(s) for s in inpaint_samples(sampler, image, mask, 3, seed=7)]
    again = [np.asarray(s) for s in inpaint_samples(sampler, image, mask, 3, seed=7)]
    assert torch.equal(torch.random.get_rng_state(), state)
    assert len(first) == 3 and not np.array_equal(first[0], first[1])
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_deterministic_architecture_gives_one_sample(inpainter):
    samples = inpaint_samples(inpainter, random_image(np.random.default_rng(0), 16, 16), box_mask(16, 16), 4)
    assert len(samples) == 1


def make_folder(root: Path, names: dict[str, tuple[int, int]], masks: bool = True) -> tuple[Path, Path]:
    """Images (random RGB of the given (H, W)) and matching box masks (255 = hole) under `root`."""
    rng = np.random.default_rng(0)
    for name, (height, width) in names.items():
        image_path, mask_path = root / "images" / name, (root / "masks" / name).with_suffix(".png")
        image_path.parent.mkdir(parents=True, exist_ok=True)
        random_image(rng, height, width).save(image_path)
        if masks:
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(box_mask(height, width) * 255).save(mask_path)
    return root / "images", root / "masks"


def test_inpaint_folder_keeps_relative_names_sizes_and_known_pixels(inpainter, tmp_path):
    images, masks = make_folder(tmp_path, {"cat/0001.png": (20, 30), "cat/0002.jpg": (16, 16), "dog/a.bmp": (40, 24)})
    written = inpaint_folder(inpainter, images, masks, tmp_path / "out", batch_size=2)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == ["cat/0001.png", "cat/0002.png", "dog/a.png"]
    for source, out in [("cat/0001.png", "cat/0001.png"), ("cat/0002.jpg", "cat/0002.png"), ("dog/a.bmp", "dog/a.png")]:
        before = np.asarray(Image.open(images / source).convert("RGB"))
        after = np.asarray(Image.open(tmp_path / "out" / out))
        known = box_mask(*before.shape[:2]) == 0
        assert after.shape == before.shape and np.array_equal(after[known], before[known])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind


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


def test_an_unreadable_image_leaves_the_output_folder_untouched(inpainter, tmp_path):
    images, masks = make_folder(tmp_path, {"a.png": (16, 16), "b.png": (16, 16)})
    (images / "b.png").write_bytes((images / "b.png").read_bytes()[:60])  # truncated: header only
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match=r"b\.png: not a readable image"):
        inpaint_folder(inpainter, images, masks, tmp_path / "out", batch_size=1)
    assert list((tmp_path / "out").iterdir()) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("setup, problem", [
    (lambda root: (root / "images").mkdir(), "holds no images"),
    (lambda root: None, "is not a folder"),
])
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
    if not CIFAR_TEST.is_dir():
        pytest.skip(f"shared CIFAR-10 sample not found at {CIFAR_TEST.resolve()}")
    files = sorted(CIFAR_TEST.rglob("*.jpg"))[:3]
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
    with caplog.at_level(logging.WARNING, logger="pixelheal.inference"):
        (written,) = inpaint_folder(inpainter, images, masks, tmp_path / "out")
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert np.asarray(Image.open(written))[0, 0].tolist() == np.asarray(Image.open(images / "a.png"))[0, 0].tolist()
