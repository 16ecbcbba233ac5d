"""Inpainting user images of any size: resize, inpaint, resize back, composite; the checkpoint it needs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pixelheal.inference import Inpainter, inpaint_image, inpaint_samples, load_inpainter, resolve_checkpoint
from pixelheal.models import InpaintingModel
from tests.inference.helpers import box_mask, random_image, tiny_checkpoint, write_checkpoint


@pytest.fixture
def inpainter(tmp_path) -> Inpainter:
    return load_inpainter(write_checkpoint(tmp_path / "unet_frm.pt"))


def test_the_inpainter_takes_size_mode_and_architecture_from_the_checkpoint(tmp_path):
    loaded = load_inpainter(write_checkpoint(tmp_path / "gray.pt", in_channels=1, image_size=(12, 20)), "auto")
    assert (loaded.arch, loaded.image_size, loaded.channels, loaded.mode) == ("unet_frm", (12, 20), 1, "L")
    assert not loaded.model.training


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
    assert np.array_equal(
        np.asarray(inpaint_image(inpainter, Image.fromarray(damaged), mask))[mask == 1], np.asarray(clean)[mask == 1]
    )


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


def test_resolve_checkpoint_accepts_a_key_or_a_path_and_names_what_is_missing(tmp_path):
    path = write_checkpoint(tmp_path / "unet_frm.pt")
    assert resolve_checkpoint("unet_frm", tmp_path) == path
    assert resolve_checkpoint(str(path), tmp_path / "elsewhere") == path
    with pytest.raises(ValueError, match=r"unet_aspp\.pt.*kedro run --pipeline=train_unet_aspp"):
        resolve_checkpoint("unet_aspp", tmp_path)
    with pytest.raises(ValueError, match="neither an architecture"):
        resolve_checkpoint("unet_nope", tmp_path)


def test_a_checkpoint_from_before_format_versioning_is_refused_with_the_command_to_retrain(tmp_path):
    old = {k: v for k, v in tiny_checkpoint().to_dict().items() if k not in ("format", "version", "image_size")}
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"old\.pt .*before format versioning.*train_unet_frm"):
        load_inpainter(tmp_path / "old.pt")


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
