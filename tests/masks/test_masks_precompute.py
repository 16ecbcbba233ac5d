"""Tests for seeded, memory-mapped mask precomputation."""

import os
import tempfile

import numpy as np
import pytest

from pixelheal.masks import BoxMaskGenerator, IrregularMaskGenerator, MaskSet, precompute_masks


class EvenOddBatchGenerator:
    """A batched generator of random boxes whose reported name depends on the image content."""

    name = "evenodd"

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.box = BoxMaskGenerator(hole_size=(0.1, 0.4))

    def __call__(self, height, width, rng, image=None):
        return self.box(height, width, rng)

    def generate_batch(self, images, rngs):
        self.batch_sizes.append(len(images))
        masks = np.stack([self.box(*images.shape[2:], rng) for rng in rngs])
        # the name depends on the image content, so misaligned images would show
        used = ["evenodd" if image[0, 0, 0] % 2 == 0 else "other" for image in images]
        return masks, used


@pytest.fixture
def images() -> np.ndarray:
    images = np.zeros((7, 3, 16, 16), np.uint8)
    images[:, :, 0, 0] = np.arange(7)[:, None]
    return images


@pytest.fixture
def cleanup():
    paths: list[str] = []
    yield paths
    for path in paths:
        os.remove(path)


def _run(images, generator, cleanup, **kwargs) -> MaskSet:
    result = precompute_masks(images, generator, progress=False, **kwargs)
    cleanup.append(result.masks.filename)
    return result


def test_mask_set_contract_and_per_image_seeding(images, cleanup):
    gen = IrregularMaskGenerator("thin", min_hole_fraction=0.05)
    result = _run(images, gen, cleanup, seed=11)
    assert result.masks.dtype == np.uint8 and result.masks.shape == (7, 1, 16, 16)
    assert result.hole_fraction.dtype == np.float32 and result.hole_fraction.shape == (7,)
    assert result.generator == ["irregular"] * 7
    for i in range(7):
        expected = gen(16, 16, np.random.default_rng([11, i]))
        np.testing.assert_array_equal(result.masks[i], expected)
        assert result.hole_fraction[i] == pytest.approx(expected.mean())


def test_result_is_an_npy_file_the_caller_can_keep(images, cleanup):
    result = _run(images, BoxMaskGenerator(), cleanup, seed=0)
    assert result.masks.filename.endswith(".npy")
    np.testing.assert_array_equal(np.load(result.masks.filename, mmap_mode="r"), result.masks)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_batched_generator_independent_of_batch_size(images, cleanup, batch_size):
    reference = _run(images, EvenOddBatchGenerator(), cleanup, seed=5, batch_size=7)
    gen = EvenOddBatchGenerator()
    result = _run(images, gen, cleanup, seed=5, batch_size=batch_size)
    np.testing.assert_array_equal(result.masks, reference.masks)
    assert result.generator == ["evenodd", "other"] * 3 + ["evenodd"]
    assert max(gen.batch_sizes) == min(batch_size, 7), "batched generators get whole batches"


def test_plain_generator_independent_of_batch_size(images, cleanup):
    gen = IrregularMaskGenerator()
    small = _run(images, gen, cleanup, seed=2, batch_size=2)
    large = _run(images, gen, cleanup, seed=2, batch_size=64)
    other_seed = _run(images, gen, cleanup, seed=3)
    np.testing.assert_array_equal(small.masks, large.masks)
    assert not np.array_equal(small.masks, other_seed.masks)


def test_memmapped_images_and_progress_bar(tmp_path, images):
    path = tmp_path / "images.npy"
    np.save(path, images)
    result = precompute_masks(np.load(path, mmap_mode="r"), BoxMaskGenerator(), seed=0, progress=True)
    try:
        assert result.masks.shape == (7, 1, 16, 16)
    finally:
        os.remove(result.masks.filename)


def test_wrong_generator_output_raises_and_leaves_no_file(images, tmp_path, monkeypatch):
    def bad(height, width, rng, image=None):
        return np.ones((height, width), np.uint8)

    bad.name = "bad"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ValueError, match="'bad' returned"):
        precompute_masks(images, bad, seed=0, progress=False)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"images": np.zeros((0, 3, 8, 8), np.uint8)}, "non-empty"),
        ({"images": np.zeros((3, 8, 8), np.uint8)}, "N×C×H×W"),
        ({"seed": -1}, "seed"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_invalid_inputs_raise(images, kwargs, match):
    arguments = {"images": images, "generator": BoxMaskGenerator(), "seed": 0, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=match):
        precompute_masks(**arguments)
