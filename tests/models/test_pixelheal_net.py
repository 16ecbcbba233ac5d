"""PixelHeal's own model (`pixelheal`): masked-convolution stack, MSE regression, compositing, conf/paired64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelheal.models import ARCHITECTURES, make_model
from pixelheal.models.pixelcnn_layers import MaskedConv2d
from pixelheal.models.pixelheal_net import PixelHealConfig, PixelHealInpainter
from pixelheal.pipelines.train.nodes import training_parameters
from pixelheal.training import TrainConfig, train
from tests.conftest import environment_parameters

TINY = {"hidden": 8, "n_layers": 2}


def _model(seed: int = 0, **hparams) -> PixelHealInpainter:
    torch.manual_seed(seed)
    return make_model("pixelheal", **{**TINY, **hparams})


def _batch(n: int = 2, channels: int = 3, size: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, channels, size, size, generator=g)
    masks = torch.zeros(n, 1, size, size)
    masks[..., 3:8, 4:9] = 1
    return images, masks


def test_it_is_a_registered_regression_architecture():
    assert ARCHITECTURES["pixelheal"].config is PixelHealConfig
    model = _model()
    images, masks = _batch()
    assert model(images, masks).shape == images.shape
    out = model.inpaint(images, masks)
    known = masks.expand_as(images) == 0
    assert torch.equal(out[known], images[known]) and out.min() >= 0 and out.max() <= 1  # composited, clamped
    samples = model.inpaint_samples(images, masks, 3)
    assert len(samples) == 1 and torch.equal(samples[0], out)  # deterministic: one completion


def test_the_stack_is_mask_a_then_mask_b_with_a_final_convolution_to_the_image():
    model = _model(n_layers=3)
    assert isinstance(model.first, MaskedConv2d) and model.first.weight.shape == (8, 4, 4, 7)  # image + mask in
    assert model.first.mask[:, :, -1, 3].sum() == 0  # mask A: the centre pixel is hidden
    assert len(model.layers) == 3 and all(layer.mask[:, :, -1, 1].min() == 1 for layer in model.layers)  # mask B
    assert isinstance(model.out, torch.nn.Conv2d) and model.out.weight.shape == (3, 8, 1, 1)
    assert _model(mask_channel=False).first.weight.shape[1] == 3  # the occluded image alone


def test_the_output_reads_only_earlier_pixels_and_never_the_hole_values():
    model = _model()
    images, masks = _batch(1)
    i, j = 5, 6
    x = model.network_input(images, masks).requires_grad_()
    h = F.relu(model.first(x))
    for layer in model.layers:
        h = F.relu(layer(h))
    model.out(h)[0, :, i, j].sum().backward()
    seen = x.grad[0].abs().sum(0) > 0  # (H, W)
    order = torch.arange(12 * 12).view(12, 12)
    assert not seen[order >= i * 12 + j].any()  # masked convolutions: only pixels before (i, j) in raster order
    assert seen[i, j - 1] and seen[i - 1, j]
    changed = images.clone()
    changed[masks.expand_as(images) == 1] = 0.5  # other hole values: the same prediction
    assert torch.equal(model(images, masks), model(changed, masks))


def test_the_loss_is_the_mse_of_the_whole_image():
    model = _model()
    images, masks = _batch()
    terms = model.losses(images, masks)
    assert set(terms) == {"loss"}
    assert torch.allclose(terms["loss"], F.mse_loss(model(images, masks), images))  # every pixel, no hole weight
    assert set(model.validation_step(images, masks)) == {"loss", "psnr"}


def test_it_learns_in_the_shared_loop():
    rng = np.random.default_rng(0)
    images = np.repeat(rng.integers(0, 256, (1, 3, 8, 8), dtype=np.uint8), 12, axis=0)
    masks = (rng.random((12, 1, 8, 8)) < 0.2).astype(np.uint8)
    cfg = TrainConfig(epochs=3, batch_size=4, optimizer="adam", lr=1e-2, device="cpu", select_on="val_loss")
    result = train(_model(), images, masks, np.arange(8), np.arange(8, 12), cfg)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    reloaded = _model(seed=1)
    reloaded.load_state_dict(result.best_state)


@pytest.mark.parametrize(
    "hparams, name",
    [
        ({"hidden": 0}, "hidden"),
        ({"n_layers": -1}, "n_layers"),
        ({"first_kernel": 1}, "first_kernel"),
        ({"first_kernel": 4}, "first_kernel"),
        ({"kernel": 2}, "kernel"),
        ({"mask_channel": "yes"}, "mask_channel"),
        ({"loss": "l1"}, "loss"),
    ],
)
def test_invalid_hyper_parameters_are_named(hparams, name):
    with pytest.raises(ValueError, match=rf"^pixelheal\.model\.{name}: "):
        make_model("pixelheal", **hparams)


def test_wrong_channel_count_is_named():
    images, masks = _batch(channels=1)
    with pytest.raises(ValueError, match="in_channels=3"):
        _model().losses(images, masks)


def test_conf_paired64_is_pixelheals_own_system():
    params = environment_parameters("paired64")
    assert params["data_processing"]["source"]["kind"] == "paired_folders"
    assert params["data_processing"]["preprocessing"]["image_size"] == 64
    assert params["masks"]["generator"]["kind"] == "from_pairs"  # the hole is where occluded and original differ
    block = params["pixelheal"]
    model = make_model("pixelheal", in_channels=3, **{k: v for k, v in block["model"].items() if k != "kind"})
    assert model.config.mask_channel and model.first.weight.shape == (64, 4, 4, 7)  # 7x7 (its causal half), 64 wide
    assert model.first.mask[:, :, -1, model.first.reach.left].sum() == 0  # mask A: the centre hidden
    assert len(model.layers) >= 1
    assert all(layer.mask[:, :, -1, layer.reach.left].min() == 1 for layer in model.layers)  # mask B: centre seen
    assert model.out.out_channels == 3  # the final convolution to RGB
    images, masks = _batch(1, size=64)
    assert torch.allclose(model.losses(images, masks)["loss"], F.mse_loss(model(images, masks), images))
    training = training_parameters(block["training"], "pixelheal.training")
    assert (training.optimizer, training.lr, training.batch_size, training.epochs) == ("adam", 0.001, 8, 20)
    assert training.random_masks is None  # the pairs' own holes
