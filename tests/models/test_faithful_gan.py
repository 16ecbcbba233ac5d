"""The GAN original reproduced: the faithful generator block by block, the ring mask, and conf/celeba."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from pixelheal.data import preprocessing_config
from pixelheal.masks import make_mask_generator
from pixelheal.models import make_model
from pixelheal.models.gan import GANInpainter, dilate
from pixelheal.pipeline_registry import register_pipelines
from pixelheal.pipelines.train.nodes import training_parameters
from tests.conftest import PROJECT_ROOT, environment_parameters

# The original's generator at 64 base channels with 3 image channels, block by block (dec1 holds the
# 3x3 output conv, the assembly's head), and its PatchGAN discriminator at 32.
ORIGINAL_BLOCKS = {
    "enc1": 39_296,
    "enc2": 221_440,
    "enc3": 885_248,
    "attention": 82_241,
    "bottleneck": 1_180_160,
    "dec3": 1_769_984,
    "dec2": 590_080,
    "dec1": 112_387,
}
ORIGINAL_GENERATOR = 4_880_836
ORIGINAL_DISCRIMINATOR = 35_553
TINY = {"base_channels": 4, "disc_channels": 4, "crop_size": 16}


def _count(*modules: nn.Module) -> int:
    return sum(p.numel() for module in modules for p in module.parameters())


def _blocks(model: GANInpainter) -> dict[str, int]:
    """Parameters per block, named as the original names them."""
    g = model.generator
    enc1, enc2, enc3 = g.encoders
    dec3, dec2, dec1 = g.decoders
    return {
        "enc1": _count(enc1),
        "enc2": _count(enc2),
        "enc3": _count(enc3),
        "attention": _count(g.attention),
        "bottleneck": _count(g.bottleneck),
        "dec3": _count(dec3),
        "dec2": _count(dec2),
        "dec1": _count(dec1, g.head),
    }


def faithful(**hparams) -> GANInpainter:
    return make_model("gan", blocks="faithful", ring_mask=True, **hparams)


def test_the_faithful_generator_has_the_original_parameter_counts():
    model = faithful(base_channels=64, disc_channels=32)
    assert _blocks(model) == ORIGINAL_BLOCKS
    assert _count(model.generator) == ORIGINAL_GENERATOR == sum(ORIGINAL_BLOCKS.values())
    assert _count(model.discriminator) == ORIGINAL_DISCRIMINATOR


def test_the_faithful_blocks_have_no_batchnorm_biases_everywhere_and_leaky_relus():
    generator = faithful(base_channels=64).generator
    modules = list(generator.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in modules)
    assert not any(isinstance(m, nn.ReLU) for m in modules)
    assert all(m.negative_slope == 0.2 for m in modules if isinstance(m, nn.LeakyReLU))
    convs = [m for m in modules if isinstance(m, nn.Conv2d)]
    assert convs and all(m.bias is not None for m in convs)
    # input: masked image + the ring mask channel
    assert generator.encoders[0][0].in_channels == 4
    # dec1: one 3x3 conv (64 + 128 → 64), then the 3x3 output conv 64 → 3
    dec1 = generator.decoders[-1].conv
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in dec1 if isinstance(c, nn.Conv2d)] == [
        (192, 64, (3, 3))
    ]
    assert (generator.head.in_channels, generator.head.out_channels, generator.head.kernel_size) == (64, 3, (3, 3))


def test_the_whole_image_variant_at_base_32():
    model = faithful(variant="whole_image", base_channels=32)
    assert _count(model.generator) == 1_221_860
    images, masks = torch.rand(1, 3, 200, 200), torch.zeros(1, 1, 200, 200)
    masks[..., 84:116, 84:116] = 1
    out = model.eval().inpaint(images, masks)
    assert out.shape == images.shape and torch.equal(out[masks.expand_as(out) == 0], images[masks.expand_as(out) == 0])


def test_the_improved_default_is_kept():
    model = make_model("gan")
    assert (model.config.blocks, model.config.ring_mask) == ("batchnorm", False)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.generator.modules())


def _spy_mask_channel(model: GANInpainter) -> list[torch.Tensor]:
    """Record the mask channel the generator is given on every call."""
    seen: list[torch.Tensor] = []
    forward = model.generator.forward

    def spy(filled, masks, prior=None):
        seen.append(masks.detach().clone())
        return forward(filled, masks, prior)

    model.generator.forward = spy
    return seen


def test_whole_image_gives_the_hole_grown_by_the_ring_as_mask_channel():
    torch.manual_seed(0)
    model = faithful(variant="whole_image", context_ring=0.125, **TINY)  # 4 px at 32 px
    seen = _spy_mask_channel(model)
    images, masks = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    masks[..., 10:18, 12:20] = 1
    model.eval()(images, masks)
    expected = torch.zeros_like(masks)
    expected[..., 6:22, 8:24] = 1
    assert torch.equal(seen[0], expected)


def test_the_hole_stays_what_is_blanked_and_composited():
    torch.manual_seed(0)
    model = faithful(variant="whole_image", context_ring=0.125, **TINY).eval()
    images, masks = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    masks[..., 10:18, 12:20] = 1
    ring_only = (dilate(masks, 4) - masks).bool().expand_as(images)
    changed = images.clone()
    changed[ring_only] = 1 - changed[ring_only]  # the ring is known context: the input sees it
    assert not torch.allclose(model(images, masks), model(changed, masks))
    out = model.inpaint(images, masks)
    known = masks.expand_as(images) == 0
    assert torch.equal(out[known], images[known])


def test_l1_is_the_mean_over_hole_and_ring():
    torch.manual_seed(0)
    model = faithful(variant="whole_image", context_ring=0.125, **TINY).eval()
    images, masks = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    masks[..., 10:18, 12:20] = 1
    region = dilate(masks, 4).expand_as(images)
    with torch.no_grad():
        prediction = model.predict(images, masks, dilate(masks, 4))
        l1 = model.losses(images, masks)["l1"]
    expected = (prediction - images).abs()[region == 1].mean()
    assert l1.item() == pytest.approx(expected.item(), rel=1e-5)


def test_hole_context_crops_hole_and_ring_and_keeps_known_pixels():
    torch.manual_seed(0)
    model = faithful(context_ring=0.02, base_channels=4, disc_channels=4, crop_size=40)
    seen = _spy_mask_channel(model)
    images, masks = torch.rand(2, 3, 200, 200), torch.zeros(2, 1, 200, 200)
    masks[0, :, 20:52, 30:62] = 1  # a 32x32 hole: its 40x40 box of hole + 4-px ring is the crop
    masks[1, :, 150:182, 100:132] = 1
    out = model.eval().inpaint(images, masks)
    known = masks.expand_as(images) == 0
    assert torch.equal(out[known], images[known])
    assert seen[0].shape == (2, 1, 40, 40) and torch.all(seen[0] == 1)  # the crop is the ring mask's box
    terms = model.train().losses(images, masks)
    terms["loss"].backward()
    assert all(torch.isfinite(v) for v in terms.values())


def test_a_faithful_training_step_moves_both_networks():
    torch.manual_seed(0)
    model = faithful(**TINY).train()
    images, masks = torch.rand(4, 3, 32, 32), torch.zeros(4, 1, 32, 32)
    masks[..., 8:16, 10:18] = 1
    optimizers = model.make_optimizers(lambda params: torch.optim.Adam(params, lr=1e-3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    record = model.training_step(images, masks, optimizers)
    assert all(np.isfinite(v) for v in record.values())
    after = model.state_dict()
    assert not torch.equal(after["generator.head.weight"], before["generator.head.weight"])
    assert not torch.equal(after["discriminator.0.weight"], before["discriminator.0.weight"])


@pytest.mark.parametrize(
    "hparams, message",
    [
        ({"blocks": "plain"}, "blocks: expected one of ['batchnorm', 'faithful']"),
        ({"ring_mask": "yes"}, "ring_mask: expected true or false"),
    ],
)
def test_invalid_faithful_keys_are_named(hparams, message):
    with pytest.raises(ValueError, match=re.escape(f"gan.model.{message}")):
        make_model("gan", **hparams)


# ---- conf/celeba: the environment is the original's description ----


@pytest.fixture(scope="module")
def celeba() -> dict:
    return environment_parameters("celeba")


@pytest.mark.filterwarnings("ignore::UserWarning")  # Kedro's note on dotted dataset names
def test_conf_celeba_header_names_registered_pipelines():
    text = (PROJECT_ROOT / "conf" / "celeba" / "parameters.yml").read_text()
    command = re.search(r"kedro run --env=celeba --pipelines=(\S+)", text)
    assert command is not None and command.group(1).split(",")[-1] == "train_gan"
    assert set(command.group(1).split(",")) <= set(register_pipelines())


def test_conf_celeba_builds_the_original_networks(celeba):
    block = dict(celeba["gan"]["model"])
    assert block.pop("kind") == "gan"
    model = make_model("gan", in_channels=3, **block)
    config = model.config
    assert (config.blocks, config.ring_mask, config.variant, config.hole_fill) == (
        "faithful",
        True,
        "hole_context",
        "zero",
    )
    assert _blocks(model) == ORIGINAL_BLOCKS
    assert (_count(model.generator), _count(model.discriminator)) == (ORIGINAL_GENERATOR, ORIGINAL_DISCRIMINATOR)
    weights = config.loss_weights
    assert (weights.adversarial, weights.l1, weights.edge, weights.ssim) == (1.0, 100.0, 10.0, 1.0)
    assert (config.adversarial_loss, config.hole_weight) == ("bce", 1.0)
    assert round(config.context_ring * 200) == 4 and config.crop_size == 32 + 2 * 4


def test_conf_celeba_trains_and_splits_as_the_original(celeba):
    training = training_parameters(celeba["gan"]["training"], "gan.training")
    assert (training.optimizer, training.lr, training.betas, training.weight_decay) == ("adam", 2e-4, (0.5, 0.999), 0.0)
    assert (training.batch_size, training.epochs) == (20, 20)
    source = celeba["data_processing"]["source"]
    assert (source["kind"], source["limit"], source["root"]) == ("celeba", 1024, "data/01_raw/celeba")
    preprocessing = preprocessing_config(celeba["data_processing"]["preprocessing"])
    assert (preprocessing.image_size, preprocessing.center_crop, preprocessing.channels) == (200, 178, 3)
    assert dict(celeba["split"]["fractions"]) == {"train": 0.8, "val": 0.1, "test": 0.1}


@pytest.mark.parametrize("where", ["test", "training"])
def test_conf_celeba_holes_are_32_px_squares_16_px_from_the_border(celeba, where):
    block = celeba["masks"]["generator"] if where == "test" else celeba["gan"]["training"]["random_masks"]
    generator = make_mask_generator(**block)
    assert round(generator.context_ring * 200) == 4  # the ring lies inside the 16-px margin
    starts = []
    for seed in range(300):
        rows, cols = np.nonzero(generator(200, 200, np.random.default_rng(seed))[0])
        assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (32, 32)
        assert min(rows.min(), cols.min()) >= 16 and max(rows.max(), cols.max()) + 1 <= 184
        starts += [int(rows.min()), int(cols.min())]
    assert min(starts) <= 18 and max(starts) >= 150  # the whole allowed range [16, 152] is used
