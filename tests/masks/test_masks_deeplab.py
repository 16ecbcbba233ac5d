"""Tests for the DeepLabV3 object-mask generator, with random or fake networks only."""

import logging
import os

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

from pixelheal.masks import (
    BoxMaskGenerator,
    DeepLabV3Config,
    DeepLabV3MaskGenerator,
    IrregularMaskGenerator,
    make_mask_generator,
    precompute_masks,
)
from pixelheal.masks.deeplab import BACKBONES

PERSON = 15


class BrightIsPerson(nn.Module):
    """Fake segmenter: 'person' wherever the red channel is above the ImageNet mean, else background."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = torch.zeros(x.shape[0], 21, *x.shape[2:])  # (B, 21, S, S)
        logits[:, PERSON] = (x[:, 0] > 0).float()  # ties elsewhere -> argmax 0 = background
        return {"out": logits}


def _images_with_squares(squares: list[tuple[int, int, int] | None], size: int = 32) -> np.ndarray:
    """One black image per entry with a white (top, left, side) square, or none for None."""
    images = np.zeros((len(squares), 3, size, size), np.uint8)
    for image, square in zip(images, squares):
        if square is not None:
            top, left, side = square
            image[:, top : top + side, left : left + side] = 255
    return images


def _fake(**options) -> DeepLabV3MaskGenerator:
    options.setdefault("input_size", 32)  # = image size: the label map is exact
    return DeepLabV3MaskGenerator.from_model(BrightIsPerson(), **options)


def _rngs(n: int, seed: int = 0) -> list[np.random.Generator]:
    return [np.random.default_rng([seed, i]) for i in range(n)]


@pytest.fixture(scope="module")
def random_net() -> nn.Module:
    torch.manual_seed(0)
    return deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21)


@pytest.fixture
def no_download(monkeypatch, tmp_path):
    """An empty torch hub dir, and any download attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return tmp_path / "hub"


def test_object_mode_hole_is_the_object():
    images = _images_with_squares([(4, 6, 8)])
    masks, used = _fake().generate_batch(images, _rngs(1))
    expected = np.zeros((1, 1, 32, 32), np.uint8)
    expected[0, 0, 4:12, 6:14] = 1
    np.testing.assert_array_equal(masks, expected)
    assert used == ["deeplabv3"]


def test_call_matches_batch_and_accepts_grayscale():
    image = _images_with_squares([(4, 6, 8)])[0, :1]  # (1, 32, 32) gray
    mask = _fake()(32, 32, np.random.default_rng(0), image=image)
    assert mask.dtype == np.uint8 and mask.shape == (1, 32, 32)
    assert mask.sum() == 64 and mask[0, 4:12, 6:14].all()


def test_selection_largest_keeps_biggest_component():
    images = _images_with_squares([(2, 2, 8)])
    images[0, :, 20:24, 20:24] = 255  # a second, smaller object
    largest, _ = _fake(selection="largest").generate_batch(images, _rngs(1))
    both, _ = _fake(selection="all").generate_batch(images, _rngs(1))
    assert largest.sum() == 64 and largest[0, 0, 20:24, 20:24].sum() == 0
    assert both.sum() == 64 + 16


def test_dilation_grows_region_by_the_radius():
    images = _images_with_squares([(10, 10, 8)])
    masks, _ = _fake(dilation=2).generate_batch(images, _rngs(1))
    assert masks[0, 0, 10:18, 10:18].all()
    rows, cols = np.nonzero(masks[0, 0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (8, 19, 8, 19)


def test_moved_mode_avoids_the_object_and_keeps_its_shape():
    images = _images_with_squares([(2, 2, 10)] * 3)
    gen = _fake(mode="moved")
    masks, used = gen.generate_batch(images, _rngs(3))
    assert used == ["deeplabv3"] * 3
    for mask in masks:
        assert mask.sum() == 100, "the moved hole has the object's area"
        assert mask[0, 2:12, 2:12].sum() == 0, "the object itself stays known"
    again, _ = gen.generate_batch(images, _rngs(3))
    np.testing.assert_array_equal(masks, again)
    assert len({m.tobytes() for m in masks}) > 1, "different rngs move to different places"


def test_moved_mode_uses_corners_when_random_shifts_overlap():
    # a 16-px object in the middle of a 32-px image: only a corner avoids it
    images = _images_with_squares([(8, 8, 16)])
    masks, _ = _fake(mode="moved", max_area=0.3).generate_batch(images, _rngs(1))
    assert masks.sum() == 256
    assert masks[0, 0, 8:24, 8:24].sum() == 64, "a corner gives the least possible overlap (8x8)"


def test_fallback_for_empty_or_out_of_range_regions():
    fallback = BoxMaskGenerator(hole_size=0.25)
    images = _images_with_squares([None, (0, 0, 2), (4, 4, 8), (0, 0, 30)])  # empty, tiny, ok, huge
    gen = _fake(fallback={"kind": "box", "hole_size": 0.25}, min_area=0.02, max_area=0.5)
    assert gen.fallback == fallback
    masks, used = gen.generate_batch(images, _rngs(4))
    assert used == ["box", "box", "deeplabv3", "box"]
    for i in (0, 1, 3):
        np.testing.assert_array_equal(masks[i], fallback(32, 32, _rngs(4)[i]))
    assert masks[2].sum() == 64


@pytest.mark.parametrize("mode", ["object", "moved"])
def test_batch_size_does_not_change_masks(mode):
    images = _images_with_squares([(1, 1, 6), None, (10, 3, 9), (20, 20, 7), None, (5, 15, 12)])
    one, used_one = _fake(batch_size=1, mode=mode).generate_batch(images, _rngs(6))
    four, used_four = _fake(batch_size=4, mode=mode).generate_batch(images, _rngs(6))
    np.testing.assert_array_equal(one, four)
    assert used_one == used_four


def test_random_network_shapes_and_batching(random_net):
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 24, 40), dtype=np.uint8)
    common = {"input_size": 64, "mode": "moved", "min_area": 0.0, "max_area": 1.0}
    by_one = DeepLabV3MaskGenerator.from_model(random_net, batch_size=1, **common)
    by_four = DeepLabV3MaskGenerator(DeepLabV3Config(batch_size=4, **common), model=random_net)
    one, used_one = by_one.generate_batch(images, _rngs(5))
    four, used_four = by_four.generate_batch(images, _rngs(5))
    assert one.dtype == np.uint8 and one.shape == (5, 1, 24, 40)
    assert set(np.unique(one)) <= {0, 1}
    assert set(used_one) <= {"deeplabv3", "irregular"} and len(used_one) == 5
    np.testing.assert_array_equal(one, four)
    assert used_one == used_four


def test_random_network_forced_fallback_is_counted(random_net):
    images = np.random.default_rng(1).integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    # max_area=0 rejects every non-empty region, and an empty one falls back anyway
    gen = DeepLabV3MaskGenerator.from_model(random_net, input_size=64, min_area=0.0, max_area=0.0)
    result = precompute_masks(images, gen, seed=3, batch_size=4, progress=False)
    try:
        assert result.generator == ["irregular"] * 6
        expected = IrregularMaskGenerator()
        for i in range(6):
            np.testing.assert_array_equal(result.masks[i], expected(32, 32, np.random.default_rng([3, i])))
    finally:
        os.remove(result.masks.filename)


def test_precompute_records_mixed_generators():
    images = _images_with_squares([(4, 4, 8), None, (2, 2, 6)])
    result = precompute_masks(images, _fake(), seed=0, batch_size=2, progress=False)
    try:
        assert result.generator == ["deeplabv3", "irregular", "deeplabv3"]
        np.testing.assert_allclose(result.hole_fraction[[0, 2]], [64 / 1024, 36 / 1024])
    finally:
        os.remove(result.masks.filename)


def test_default_weights_missing_falls_back_without_download(no_download, caplog):
    with caplog.at_level(logging.WARNING, logger="pixelheal.masks.deeplab"):
        gen = make_mask_generator("deeplabv3", weights="default", input_size=32)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert gen.model is None
    images = _images_with_squares([(4, 4, 8), None])
    masks, used = gen.generate_batch(images, _rngs(2))
    assert used == ["irregular", "irregular"]
    assert masks.shape == (2, 1, 32, 32)
    assert not (no_download / "checkpoints").exists() or not any((no_download / "checkpoints").iterdir())


def test_default_weights_loaded_from_hub_cache(no_download, caplog):
    torch.manual_seed(1)
    net = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    url = BACKBONES["mobilenet_v3_large"][1].url
    (no_download / "checkpoints").mkdir(parents=True)
    torch.save(net.state_dict(), no_download / "checkpoints" / os.path.basename(url))
    with caplog.at_level(logging.WARNING, logger="pixelheal.masks.deeplab"):
        gen = make_mask_generator("deeplabv3", weights="default", input_size=32)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    assert gen.model is not None
    loaded = gen.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in net.state_dict().items())


def test_unreadable_local_weights_fall_back(no_download, tmp_path, caplog):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.WARNING, logger="pixelheal.masks.deeplab"):
        gen = make_mask_generator("deeplabv3", weights=str(path))
    assert gen.model is None
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_weights_none_builds_random_network_offline(no_download):
    gen = DeepLabV3MaskGenerator(DeepLabV3Config(weights="none", input_size=32))
    assert isinstance(gen.model, nn.Module) and not gen.model.training


def test_fallback_from_a_block_and_default():
    gen = _fake(fallback={"kind": "box", "hole_size": 0.5})
    assert isinstance(gen.fallback, BoxMaskGenerator) and gen.fallback.name == "box"
    assert _fake().fallback == IrregularMaskGenerator()


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"backbone": "vgg"}, "backbone"),
        ({"selection": "biggest"}, "selection"),
        ({"mode": "swap"}, "mode"),
        ({"classes": ["unicorn"]}, "classes"),
        ({"classes": [0]}, "classes"),
        ({"classes": []}, "classes"),
        ({"classes": "person"}, "classes"),
        ({"min_area": 0.6, "max_area": 0.5}, "min_area"),
        ({"max_area": 2.0}, "max_area"),
        ({"dilation": -1}, "dilation"),
        ({"input_size": 0}, "input_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"device": "not-a-device"}, "device"),
        ({"fallback": "irregular"}, "fallback"),
        ({"fallback": {"preset": "thin"}}, "fallback"),
        ({"dilation": 1.5}, "dilation"),
        ({"classes": [True]}, "classes"),
        ({"weights": None}, "weights"),
    ],
)
def test_invalid_parameters_name_the_parameter(kwargs, param):
    with pytest.raises(ValueError, match=rf"^masks\.generator\.{param}\b"):
        _fake(**kwargs)


def test_classes_by_name_and_id_agree():
    assert _fake(classes=["person", "cat"]).class_ids == _fake(classes=[15, 8]).class_ids == [15, 8]


def test_bad_images_raise():
    gen = _fake()
    with pytest.raises(ValueError, match="image=None"):
        gen(32, 32, np.random.default_rng(0))
    with pytest.raises(ValueError, match="mask was requested"):
        gen(16, 16, np.random.default_rng(0), image=np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="one each"):
        gen.generate_batch(np.zeros((2, 3, 32, 32), np.uint8), _rngs(1))
    with pytest.raises(ValueError, match="C = 1 or 3"):
        gen.generate_batch(np.zeros((1, 4, 32, 32), np.uint8), _rngs(1))
