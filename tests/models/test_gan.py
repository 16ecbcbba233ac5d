"""GAN inpainter: sizes, self-attention, exact known pixels with hole crops, training and resume."""

import re

import numpy as np
import pytest
import torch

from pixelheal.config import to_block
from pixelheal.masks.box import BoxMaskGenerator
from pixelheal.models import make_model, model_config
from pixelheal.models.attention import SelfAttention
from pixelheal.models.gan import GANConfig, GANInpainter, LossWeights
from pixelheal.training import TrainConfig, train
from tests.training.interrupt import Killed, die_at_step

TINY = {"base_channels": 4, "disc_channels": 4, "crop_size": 16}


def gan(**hparams) -> GANInpainter:
    return make_model("gan", **hparams)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _batch(channels: int = 3, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(3, channels, size, size, generator=g)
    masks = (torch.rand(3, 1, size, size, generator=g) < 0.2).float()
    return images, masks


def _assert_known_pixels_unchanged(model: GANInpainter, images: torch.Tensor, masks: torch.Tensor) -> None:
    out = model.eval().inpaint(images, masks)
    known = masks.expand_as(images) == 0
    assert torch.equal(out[known], images[known])
    assert out.min() >= 0 and out.max() <= 1


def test_parameter_counts_of_the_improved_generator_at_the_original_widths():
    model = gan(base_channels=64, disc_channels=32)
    # BatchNorm stages and a 1x1 head; the original's 4,880,836 are tests/models/test_faithful_gan.py's
    assert _count(model.generator) == 4_918_532
    assert _count(model.discriminator) == 35_553
    images = torch.rand(1, 3, 200, 200)
    masks = torch.zeros(1, 1, 200, 200)
    masks[..., 84:116, 84:116] = 1  # the original's 32x32 hole
    assert model.eval().inpaint(images, masks).shape == images.shape


def test_state_dict_holds_generator_and_discriminator():
    keys = gan(**TINY).state_dict().keys()
    assert any(k.startswith("generator.") for k in keys)
    assert any(k.startswith("discriminator.") for k in keys)


def test_the_generator_is_the_shared_unet_with_attention_and_bilinear_upsampling():
    generator = gan(**TINY).generator
    assert type(generator).__name__ == "UNet" and type(generator.attention).__name__ == "SelfAttention"
    assert all(type(d.up).__name__ == "BilinearUpsample" and d.refine is None for d in generator.decoders)
    assert [d.conv[0].in_channels for d in generator.decoders] == [32, 24, 12]  # 4b+4b, 4b+2b, 2b+b at b = 4


def test_the_defaults_are_the_improved_generator_in_the_original_setting():
    config = model_config("gan", {})
    assert config == GANConfig() and config.variant == "hole_context" and config.crop_size == 40
    assert (config.base_channels, config.disc_channels, config.context_ring) == (64, 32, 0.02)
    assert (config.blocks, config.ring_mask) == ("batchnorm", False)


@pytest.mark.parametrize("variant", ["whole_image", "hole_context"])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shape_and_range(variant, channels):
    torch.manual_seed(0)
    model = gan(variant=variant, in_channels=channels, **TINY)
    images, masks = _batch(channels)
    prediction = model(images, masks)
    assert prediction.shape == images.shape
    assert prediction.min() >= 0 and prediction.max() <= 1
    terms = model.losses(images, masks)
    assert set(terms) == {"adversarial", "l1", "log_mse", "edge", "ssim", "g_loss", "loss"}
    terms["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_whole_image_works_on_sides_that_are_not_multiples_of_eight():
    model = gan(variant="whole_image", **TINY)
    images, masks = torch.rand(1, 3, 25, 19), torch.ones(1, 1, 25, 19)
    assert model(images, masks).shape == images.shape


def test_self_attention_starts_as_the_identity():
    block = SelfAttention(16)
    x = torch.randn(2, 16, 5, 6)
    assert block.gamma.item() == 0.0
    assert torch.equal(block(x), x)


def test_self_attention_is_permutation_equivariant_over_positions():
    torch.manual_seed(0)
    block = SelfAttention(16)
    with torch.no_grad():
        block.gamma.fill_(0.7)
    x = torch.randn(2, 16, 4, 5)
    perm = torch.randperm(20)

    def permute(t: torch.Tensor) -> torch.Tensor:
        return t.flatten(2)[:, :, perm].view_as(t)

    out = block(x)
    assert out.shape == x.shape
    assert not torch.allclose(out, x)
    assert torch.allclose(block(permute(x)), permute(out), atol=1e-5)


def test_hole_context_keeps_known_pixels_for_random_masks():
    torch.manual_seed(0)
    model = gan(**TINY)
    images, masks = _batch()
    _assert_known_pixels_unchanged(model, images, masks)


def test_hole_context_keeps_known_pixels_for_box_masks():
    torch.manual_seed(0)
    model = gan(**TINY)
    generator = BoxMaskGenerator(hole_size=(0.12, 0.4), aspect="rect", margin=0.05, context_ring=0.02)
    rng = np.random.default_rng(0)
    masks = torch.from_numpy(np.stack([generator(40, 40, rng) for _ in range(4)])).float()
    images = torch.rand(4, 3, 40, 40)
    _assert_known_pixels_unchanged(model, images, masks)
    # outside the hole's box the model predicts nothing: its raw output is the image there
    prediction = model(images, masks)
    far = torch.ones_like(masks, dtype=torch.bool)
    for i, mask in enumerate(masks):
        rows, cols = torch.nonzero(mask[0], as_tuple=True)
        far[i, :, max(rows.min() - 8, 0) : rows.max() + 9, max(cols.min() - 8, 0) : cols.max() + 9] = False
    far = far.expand_as(images)
    assert torch.equal(prediction[far], images[far])


@pytest.mark.parametrize(
    "hole", [(slice(0, 6), slice(0, 9)), (slice(26, 32), slice(10, 32)), (slice(0, 32), slice(30, 32))]
)
def test_hole_context_keeps_known_pixels_with_a_hole_at_the_border(hole):
    torch.manual_seed(0)
    model = gan(**TINY)
    images = torch.rand(2, 3, 32, 32)
    masks = torch.zeros(2, 1, 32, 32)
    masks[0, 0, hole[0], hole[1]] = 1
    _assert_known_pixels_unchanged(model, images, masks)
    out = model.inpaint(images, masks)
    assert not torch.equal(out[0], images[0])  # the hole was filled
    assert torch.equal(out[1], images[1])  # an empty mask: nothing to do


def test_hole_context_with_no_hole_in_the_batch():
    model = gan(**TINY)
    images, masks = torch.rand(2, 3, 16, 16), torch.zeros(2, 1, 16, 16)
    assert torch.equal(model.eval().inpaint(images, masks), images)
    assert all(value.item() == 0.0 for value in model.losses(images, masks).values())
    optimizers = model.make_optimizers(lambda params: torch.optim.Adam(params, lr=0.1))
    before = [p.detach().clone() for p in model.parameters()]
    assert model.train().training_step(images, masks, optimizers)["d_loss"] == 0.0
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))


@pytest.mark.parametrize(
    "hparams, message",
    [
        ({"variant": "crop"}, "variant: expected one of ['whole_image', 'hole_context']"),
        ({"base_channels": 0}, "base_channels: must be >= 1"),
        ({"disc_channels": 2.5}, "disc_channels: expected an integer"),
        ({"context_ring": 0.6}, "context_ring: must be in [0, 0.5)"),
        ({"crop_size": 8}, "crop_size: must be >= 16"),
        ({"loss_weights": {"perceptual": 1.0}}, "loss_weights.perceptual: unknown parameter; valid: ['adversarial'"),
        ({"loss_weights": {"l1": -1.0}}, "loss_weights.l1: must be >= 0"),
        ({"loss_weights": {"l1": "high"}}, "loss_weights.l1: expected a number"),
        ({"loss_weights": [1.0, 2.0]}, "loss_weights: expected a mapping"),
        ({"context_ring": "4px"}, "context_ring: expected a number"),
        ({"adversarial_loss": "hinge"}, "adversarial_loss: expected one of ['bce', 'lsgan']"),
        ({"hole_weight": 0.5}, "hole_weight: must be >= 1"),
        ({"hole_fill": "telea"}, "hole_fill: expected one of"),
        ({"dilations": [1, 2]}, "dilations: unknown parameter"),
    ],
)
def test_invalid_hyper_parameters_are_named(hparams, message):
    with pytest.raises(ValueError, match=re.escape(f"gan.model.{message}")):
        gan(**hparams)


def test_partial_loss_weights_keep_the_other_defaults():
    model = gan(loss_weights={"l1": 5.0}, **TINY)
    assert model.config.loss_weights == LossWeights(adversarial=1.0, l1=5.0, edge=10.0, ssim=1.0)
    assert to_block(model.config)["loss_weights"] == {
        "adversarial": 1.0,
        "l1": 5.0,
        "edge": 10.0,
        "ssim": 1.0,
        "log_mse": 0.0,
    }


def test_the_generator_loss_is_the_weighted_sum_of_its_terms():
    torch.manual_seed(0)
    model = gan(variant="whole_image", loss_weights={"adversarial": 2.0, "edge": 0.0}, **TINY)
    terms = model.losses(*_batch(size=16))
    expected = 2 * terms["adversarial"] + 100 * terms["l1"] + terms["ssim"]
    assert torch.allclose(terms["g_loss"], expected) and terms["loss"] is terms["g_loss"]


def _data(n: int = 24, size: int = 16):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    masks = np.zeros((n, 1, size, size), np.uint8)
    for i in range(n):
        top, left = rng.integers(0, size - 6, 2)
        masks[i, :, top : top + 6, left : left + 6] = 1
    return images, masks, np.arange(0, 16), np.arange(16, n)


def _model(variant: str = "hole_context") -> GANInpainter:
    torch.manual_seed(0)
    return gan(variant=variant, **TINY)


CFG = TrainConfig(epochs=3, batch_size=8, optimizer="adam", lr=2e-4, betas=(0.5, 0.999), seed=1, device="cpu")


@pytest.mark.parametrize("variant", ["whole_image", "hole_context"])
def test_a_tiny_training_run_records_every_loss_term(variant):
    images, masks, train_idx, val_idx = _data()
    result = train(_model(variant), images, masks, train_idx, val_idx, TrainConfig(**{**CFG.__dict__, "epochs": 2}))
    assert [r["epoch"] for r in result.history] == [1, 2]
    keys = {f"train_{k}" for k in ("adversarial", "l1", "edge", "ssim", "d_loss", "g_loss")} | {"val_loss", "val_psnr"}
    assert keys <= set(result.history[0])
    assert all(np.isfinite(v) for record in result.history for v in record.values())
    assert any(k.startswith("discriminator.") for k in result.best_state)


def test_resume_of_a_gan_run_continues_from_the_interrupted_epoch(tmp_path):
    images, masks, train_idx, val_idx = _data()
    reference = train(_model(), images, masks, train_idx, val_idx, CFG)

    model, state = _model(), tmp_path / "state.pt"
    die_at_step(model, 3)  # 2 batches per epoch: dies in the middle of epoch 2
    with pytest.raises(Killed):
        train(model, images, masks, train_idx, val_idx, CFG, state_path=state)
    saved = torch.load(state, weights_only=True)
    assert saved["epochs_done"] == 1
    assert set(saved["optimizers"]) == {"generator", "discriminator"}
    assert all(saved["optimizers"][name]["state"] for name in ("generator", "discriminator"))

    resumed_epochs = []
    result = train(
        _model(),
        images,
        masks,
        train_idx,
        val_idx,
        CFG,
        state_path=state,
        resume=True,
        on_epoch=lambda record: resumed_epochs.append(record["epoch"]),
    )
    assert resumed_epochs == [2, 3]
    assert [r["train_g_loss"] for r in result.history] == [r["train_g_loss"] for r in reference.history]
    assert [r["train_d_loss"] for r in result.history] == [r["train_d_loss"] for r in reference.history]


def test_hole_weight_counts_hole_pixels_more_in_l1():
    torch.manual_seed(0)
    images, masks = torch.rand(2, 3, 16, 16), torch.zeros(2, 1, 16, 16)
    masks[:, :, 4:8, 4:8] = 1
    plain = gan(variant="whole_image", hole_weight=1.0, **TINY)
    weighted = gan(variant="whole_image", hole_weight=5.0, **TINY)
    weighted.load_state_dict(plain.state_dict())
    prediction = plain.eval().predict(images, masks)
    hole_error = ((prediction - images).abs() * masks).sum() / (masks.sum() * 3)
    known_error = ((prediction - images).abs() * (1 - masks)).sum() / ((1 - masks).sum() * 3)
    expected = (5 * 16 * hole_error + 240 * known_error) / (5 * 16 + 240)
    assert weighted.eval().losses(images, masks)["l1"].item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="gan.model.hole_weight"):
        gan(hole_weight=0.5)


@pytest.mark.parametrize("fill", ["smooth", "biharmonic"])
def test_hole_context_with_an_interpolated_fill_predicts_only_around_the_hole(fill):
    model = gan(variant="hole_context", hole_fill=fill, **TINY).eval()
    images, masks = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    masks[:, :, 8:20, 10:24] = 1
    with torch.no_grad():
        prediction = model(images, masks)  # not composited: the generator's crop pasted back
    far = torch.ones(32, 32, dtype=torch.bool)
    far[2:26, 4:30] = False  # the hole's box, made square and ringed with context, lies inside
    assert torch.isfinite(prediction).all()
    assert torch.equal(prediction[..., far], images[..., far])
    assert not torch.equal(prediction[..., 8:20, 10:24], images[..., 8:20, 10:24])
