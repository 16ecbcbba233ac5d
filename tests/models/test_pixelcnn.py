"""PixelCNN / Gated PixelCNN inpainter: causality, conditioning, sampling, cropped sampler == naive, training."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelheal.models import make_model
from pixelheal.models.autoregressive import AutoregressiveInpainter
from pixelheal.models.fills import fill_holes, masked_input
from pixelheal.models.pixelcnn import PixelCNNInpainter
from pixelheal.models.pixelcnn_layers import MaskedConv2d, ResidualBlock
from pixelheal.pipelines.train.nodes import training_parameters
from pixelheal.training import TrainConfig, train
from tests.conftest import environment_parameters

KINDS = {"pixelcnn": {"gated": False}, "gated": {"gated": True}}
MIXTURE = {"output": "logistic_mixture", "mixtures": 3}
MIXTURE_FILL = {**MIXTURE, "cond_fill": "biharmonic"}


def _model(kind: str = "pixelcnn", seed: int = 0, **hparams) -> PixelCNNInpainter:
    torch.manual_seed(seed)
    settings = {"hidden": 12, "n_blocks": 1, "cond_layers": 2, **KINDS[kind], **hparams}
    return make_model("pixelcnn", **settings).eval()


def _batch(n: int = 3, channels: int = 3, height: int = 10, width: int = 11, fraction: float = 0.3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, height, width), generator=g).float() / 255
    masks = (torch.rand(n, 1, height, width, generator=g) < fraction).float()
    return images, masks


def _later(i: int, j: int, c: int, channels: int, height: int, width: int) -> torch.Tensor:
    """(C, H, W) bool: the AR inputs that the logits at (i, j, c) must NOT depend on."""
    later = torch.zeros(channels, height, width, dtype=torch.bool)
    later[:, i + 1 :] = True
    later[:, i, j + 1 :] = True
    later[c:, i, j] = True  # mask A: the channel itself and the later ones of the same pixel
    return later


POSITIONS = [(0, 0, 0), (0, 4, 1), (3, 8, 2), (4, 0, 0), (5, 4, 1), (8, 8, 2), (8, 5, 0)]  # 8 = last row/column


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("output", [{}, MIXTURE])
def test_logits_depend_only_on_earlier_ar_inputs(kind, output):
    model = _model(kind, n_blocks=2, **output)
    images, masks = _batch(1, height=9, width=9)
    cond = model.condition(images, masks).detach()  # held fixed
    g = torch.Generator().manual_seed(1)
    for i, j, c in POSITIONS:
        grad = torch.zeros(3, 9, 9)
        for _ in range(3):  # several inputs, so a dead ReLU cannot hide a dependence
            x = torch.randn(1, 3, 9, 9, generator=g, requires_grad=True)
            logits = model.pixel_logits(model.trunk(x, cond), x)  # (1, C, 256, H, W)
            (logits[0, c, :, i, j] * torch.randn(256, generator=g)).sum().backward()
            assert x.grad[0][_later(i, j, c, 3, 9, 9)].abs().max() == 0, (i, j, c)
            grad += x.grad[0].abs()  # (C, H, W)
        if c > 0:
            assert grad[:c, i, j].min() > 0  # R → G → B: the earlier channels of the pixel are read
        if j > 0:
            assert grad[:, i, j - 1].min() > 0
        if i > 0:
            assert grad[:, i - 1, j].min() > 0


def test_gated_pixelcnn_has_no_blind_spot():
    model = _model("gated", n_blocks=2)
    images, masks = _batch(1, height=9, width=9)
    cond = model.condition(images, masks).detach()
    x = torch.randn(1, 3, 9, 9, requires_grad=True)
    i, j = 6, 4
    (model.pixel_logits(model.trunk(x, cond), x)[0, 0, :, i, j] * torch.randn(256)).sum().backward()
    grad = x.grad[0].abs()
    # every pixel of the three rows above within 3 columns either side, and the three to the left
    assert grad[:, i - 3 : i, j - 3 : j + 4].amin() > 0
    assert grad[:, i, j - 3 : j].amin() > 0


def test_conditioning_sees_known_pixels_everywhere_but_never_hole_values():
    model = _model()
    images, masks = _batch(1, height=9, width=9)
    masks[:] = 0
    masks[..., 2:5, 2:5] = 1
    images.requires_grad_(True)
    model(images, masks)[0, 0, :, 3, 3].sum().backward()  # AR input is quantised: grads come via conditioning
    grad = images.grad[0].abs().sum(0)  # (H, W)
    assert grad[4, 5] > 0  # a known pixel after (3, 3) in raster order
    assert grad[2:5, 2:5].max() == 0  # hole values are zeroed before conditioning


@pytest.mark.parametrize("cond_fill", ["smooth", "biharmonic"])
def test_a_filled_conditioning_reads_known_pixels_but_never_hole_values(cond_fill):
    model = _model(cond_fill=cond_fill)
    images, masks = _batch(1, height=9, width=9)
    masks[:] = 0
    masks[..., 2:5, 2:5] = 1
    scrambled = torch.where(masks.bool(), torch.rand_like(images), images)
    assert torch.equal(model.condition(scrambled, masks), model.condition(images, masks))
    later = images.clone()
    later[..., 4, 5] = 1 - later[..., 4, 5]  # a known pixel after (3, 3) in raster order
    assert not torch.equal(model(later, masks)[..., 3, 3], model(images, masks)[..., 3, 3])


def test_cond_fill_interpolates_the_hole_and_zero_is_the_masked_image():
    images, masks = _batch(2, height=9, width=9)
    cond = _model(cond_fill="biharmonic").conditioning
    filled = _model(cond_fill="biharmonic").condition(images, masks)
    expected = cond(torch.cat([fill_holes(images, masks, "biharmonic"), masks], 1))
    assert torch.equal(filled, expected)
    zero = _model()
    assert torch.equal(zero.condition(images, masks), zero.conditioning(masked_input(images, masks)))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_inpainting_keeps_known_pixels_and_ignores_hole_values(kind):
    model = _model(kind, sampling="greedy")
    images, masks = _batch()
    out = model.inpaint(images, masks)
    known = masks.expand_as(images) == 0
    assert torch.equal(out[known], images[known])
    assert torch.equal((out * 255).round(), out * 255)  # completions are valid 8-bit values
    scrambled = torch.where(known, images, torch.rand_like(images))
    assert torch.equal(model.inpaint(scrambled, masks), out)


def test_greedy_is_deterministic_and_sampling_is_seeded():
    images, masks = _batch()
    greedy = _model(sampling="greedy")
    assert torch.equal(greedy.inpaint(images, masks), greedy.inpaint(images, masks))
    model = _model(sampling="sample")
    torch.manual_seed(5)
    first = model.inpaint(images, masks)
    torch.manual_seed(5)
    assert torch.equal(model.inpaint(images, masks), first)  # global RNG
    assert torch.equal(model.sample(images, masks, generator=torch.Generator().manual_seed(5)), first)
    torch.manual_seed(6)
    assert not torch.equal(model.inpaint(images, masks), first)


def test_samples_are_diverse_and_temperature_sharpens():
    model = _model()
    images, masks = _batch()
    samples = model.inpaint_samples(images, masks, 3)
    assert len(samples) == 3 and all(s.shape == images.shape for s in samples)
    hole = masks.expand_as(images).bool()
    assert not torch.equal(samples[0][hole], samples[1][hole])
    assert not torch.equal(samples[1][hole], samples[2][hole])
    greedy = model.sample(images, masks, greedy=True)
    cold = model.sample(images, masks, temperature=1e-4)
    assert torch.equal(cold, greedy)  # temperature → 0 is the arg-max
    with pytest.raises(ValueError, match="n_samples"):
        model.inpaint_samples(images, masks, 0)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("greedy, options", [(True, {}), (False, {}), (False, MIXTURE_FILL)])
def test_cropped_sampler_equals_the_naive_full_image_sampler(kind, greedy, options):
    model = _model(kind, **options)
    images, masks = _batch(2, height=10, width=12)  # wider and taller than the reach: real crops
    reach = model.trunk.reach
    assert reach.left + reach.right + 1 < 12 and reach.up + 1 < 10
    fast = model.sample(images, masks, greedy=greedy, generator=torch.Generator().manual_seed(3))
    naive = model.naive_sample(images, masks, greedy=greedy, generator=torch.Generator().manual_seed(3))
    assert torch.equal(fast, naive)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("options", [{}, MIXTURE_FILL])
def test_cropped_nll_equals_full_image_nll(kind, options):
    model = _model(kind, n_blocks=2, **options)
    images, masks = _batch(3, height=11, width=12)
    masks[2] = 0  # an empty hole has no NLL
    full = model.test_metrics(images, masks)["nll_bpd"]
    cropped = model.sampler_nll_bpd(images, masks)
    assert full.shape == (3,) and math.isnan(full[2]) and math.isnan(cropped[2])
    assert torch.allclose(full[:2], cropped[:2], atol=1e-5)
    if not options:
        assert 4 < full[0] < 10  # an untrained softmax model is spread wide over the 256 values


def test_an_untrained_mixture_with_a_fill_draws_around_the_fill():
    model = _model("pixelcnn", n_blocks=2, **MIXTURE_FILL)
    images, masks = _batch(2, height=11, width=12)
    filled = model.filled(images, masks)
    logits = model(images, masks)  # (B, C, 256, H, W)
    hole = masks[:, 0].bool()
    red_mode = logits[:, 0].argmax(1)[hole]  # the red channel's most likely value at every hole pixel
    red_fill = model.quantise(filled)[:, 0][hole]
    inside = (red_fill >= 48) & (red_fill <= 207)  # nearer an edge, the edge bin's tail can outweigh the mode
    assert (
        inside.sum() > 10 and (red_mode - red_fill)[inside].abs().max() <= 1
    )  # the means start at the fill (its rounding aside)
    scale = model.head[-1].bias[model.mixture.slots("log_scales")]
    assert torch.equal(scale, torch.full_like(scale, -2.5))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_mixture_head_width_and_direct_likelihood_equals_the_table(kind):
    model = _model(kind, **MIXTURE_FILL)
    assert model.head[-1].out_channels == 3 * 3 * 3 + 3 * 3 * 2 // 2  # C*3K + K*C*(C-1)/2, not C*256
    images, masks = _batch()
    where = masks[:, 0].bool().nonzero(as_tuple=True)
    values = model.quantise(images).permute(0, 2, 3, 1)[where]
    direct = model.hole_nll(images, masks, where, values)  # at the true values only
    table = AutoregressiveInpainter.hole_nll(model, images, masks, where, values)  # cross-entropy of the 256-table
    assert direct.shape == (len(values), 3) and torch.allclose(direct, table, atol=1e-4)
    assert model(images, masks).exp().sum(2).sub(1).abs().max() < 1e-4  # logits are normalised log-probabilities


def test_loss_is_the_hole_cross_entropy():
    model = _model()
    images, masks = _batch()
    terms = model.losses(images, masks)
    per_image = model.test_metrics(images, masks)["nll_bpd"]
    dims = masks.flatten(1).sum(1)
    pooled = (per_image * dims).sum() / dims.sum()
    assert torch.allclose(terms["nll_bpd"], pooled) and torch.allclose(terms["loss"], pooled * math.log(2))
    # known pixels do not count: changing them only changes the loss through the conditioning
    assert model.losses(images, torch.zeros_like(masks))["loss"] == 0


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_bernoulli_output_on_binarised_images(kind):
    model = _model(kind, output="bernoulli", in_channels=1)
    images, masks = _batch(2, channels=1)
    images = (images > 0.5).float()
    logits = model(images, masks)
    assert logits.shape == (2, 1, 1, 10, 11)  # one Bernoulli logit per sub-pixel
    model.losses(images, masks)["loss"].backward()
    out = model.inpaint(images, masks)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(out[masks == 0], images[masks == 0])
    fast = model.sample(images, masks, generator=torch.Generator().manual_seed(0))
    naive = model.naive_sample(images, masks, generator=torch.Generator().manual_seed(0))
    assert torch.equal(fast, naive)
    assert torch.allclose(model.test_metrics(images, masks)["nll_bpd"], model.sampler_nll_bpd(images, masks), atol=1e-5)


def test_grayscale_softmax_round_trip():
    model = _model(in_channels=1, hidden=4)
    images, masks = _batch(2, channels=1)
    fast = model.sample(images, masks, greedy=True)
    assert torch.equal(fast, model.naive_sample(images, masks, greedy=True))


def test_learns_a_flat_image():
    model = _model(sampling="greedy").train()
    images, masks = torch.full((4, 3, 6, 6), 100 / 255), torch.ones(4, 1, 6, 6)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.losses(images, masks)["loss"].item()
    for _ in range(30):
        model.training_step(images, masks, {"model": optimizer})
    assert model.losses(images, masks)["loss"].item() < first / 4
    assert torch.equal(model.eval().inpaint(images, masks), images)  # every hole pixel becomes 100


def test_mixture_training_steps_reduce_the_loss():
    model = _model(**MIXTURE_FILL).train()
    images, masks = torch.full((4, 3, 6, 6), 100 / 255), torch.ones(4, 1, 6, 6)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.losses(images, masks)["loss"].item()
    for _ in range(30):
        model.training_step(images, masks, {"model": optimizer})
    assert model.losses(images, masks)["loss"].item() < 0.8 * first


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_shared_training_loop_runs(kind):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 3, 8, 8), dtype=np.uint8)
    masks = (rng.random((12, 1, 8, 8)) < 0.3).astype(np.uint8)
    cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-3, select_on="val_nll_bpd", device="cpu")
    result = train(_model(kind), images, masks, np.arange(8), np.arange(8, 12), cfg)
    assert [r["epoch"] for r in result.history] == [1, 2]
    # Validation is likelihood only: sampling every validation image each epoch would dominate.
    assert {"train_loss", "train_nll_bpd", "val_loss", "val_nll_bpd"} <= set(result.history[0])
    assert "val_psnr" not in result.history[0]
    assert all(math.isfinite(r["val_nll_bpd"]) for r in result.history)
    reloaded = make_model("pixelcnn", hidden=12, n_blocks=1, cond_layers=2, **KINDS[kind])
    reloaded.load_state_dict(result.best_state)  # masks are not stored: weights alone rebuild it


@pytest.mark.parametrize(
    "hparams, name",
    [
        ({"hidden": 4}, "hidden"),
        ({"n_blocks": -1}, "n_blocks"),
        ({"output": "gaussian"}, "output"),
        ({"sampling": "beam"}, "sampling"),
        ({"temperature": 0}, "temperature"),
        ({"cond_layers": 0}, "cond_layers"),
        ({"in_channels": 0}, "in_channels"),
        ({"gated": "yes"}, "gated"),
        ({"conditional": "no"}, "conditional"),
        ({"temperature": "hot"}, "temperature"),
        ({"hiden": 8}, "hiden"),
        ({"mixtures": 0}, "mixtures"),
        ({"mixtures": 2.5}, "mixtures"),
        ({"cond_fill": "telea"}, "cond_fill"),
        ({"cond_fill": "smooth", "conditional": False}, "cond_fill"),
    ],
)
def test_invalid_hyper_parameters_are_named(hparams, name):
    with pytest.raises(ValueError, match=rf"^pixelcnn\.model\.{name}: "):
        make_model("pixelcnn", **hparams)


def test_hidden_must_give_each_colour_group_a_channel():
    with pytest.raises(ValueError, match=r"pixelcnn\.model\.hidden: must be at least 2 \* in_channels = 6, got 5"):
        make_model("pixelcnn", hidden=5)
    assert make_model("pixelcnn", in_channels=1, hidden=2, n_blocks=1).trunk.reach.up > 0


def test_wrong_channel_count_is_named():
    with pytest.raises(ValueError, match="in_channels"):
        _model().inpaint(*_batch(1, channels=1))


# ----- the unconditional original (binarised MNIST): density of every pixel, generation ---------


def _unconditional(kind: str = "pixelcnn", **hparams) -> PixelCNNInpainter:
    return _model(kind, conditional=False, output="bernoulli", in_channels=1, **hparams)


def _binary(n: int = 3, height: int = 10, width: int = 11, seed: int = 0):
    images, masks = _batch(n, channels=1, height=height, width=width, seed=seed)
    return (images > 0.5).float(), masks


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_unconditional_model_has_no_conditioning_and_ignores_the_mask(kind):
    model = _unconditional(kind)
    assert model.conditioning is None and not [name for name in model.state_dict() if "cond" in name]
    images, masks = _binary()
    assert torch.equal(model(images, masks), model(images, torch.ones_like(masks)))
    g = torch.Generator().manual_seed(1)
    for i, j in [(0, 0), (4, 5), (9, 10)]:  # causal: the logits at (i, j) read only earlier pixels
        x = torch.randn(1, 1, 10, 11, generator=g, requires_grad=True)
        model.pixel_logits(model.trunk(x, None), x)[0, 0, 0, i, j].backward()
        assert x.grad[0][_later(i, j, 0, 1, 10, 11)].abs().max() == 0, (i, j)


def test_unconditional_loss_is_the_bce_of_every_pixel():
    model = _unconditional()
    images, masks = _binary()
    logits = model(images, masks)[:, :, 0]  # (B, 1, H, W): one Bernoulli logit per pixel
    every_pixel = F.binary_cross_entropy_with_logits(logits, images)
    terms = model.losses(images, masks)
    assert torch.allclose(terms["loss"], every_pixel) and torch.allclose(terms["nll_bpd"], every_pixel / math.log(2))
    assert model.losses(images, torch.zeros_like(masks))["loss"].item() == pytest.approx(every_pixel.item())
    assert model.validation_step(images, masks)["loss"] == pytest.approx(every_pixel.item())
    # the test metric stays the NLL of the hole pixels (in raster order), what the sampler draws from
    hole = masks.bool()
    per_image = F.binary_cross_entropy_with_logits(logits, images, reduction="none").where(hole, 0).sum((1, 2, 3))
    bits = per_image / (hole.sum((1, 2, 3)) * math.log(2))
    assert torch.allclose(model.test_metrics(images, masks)["nll_bpd"], bits, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_unconditional_sampling_is_exact_and_generates_from_a_blank_canvas(kind):
    model = _unconditional(kind)
    images, masks = _binary(2, height=10, width=12)
    fast = model.sample(images, masks, generator=torch.Generator().manual_seed(3))
    assert torch.equal(fast, model.naive_sample(images, masks, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(fast[masks.expand_as(fast) == 0], images[masks.expand_as(images) == 0])
    generated = model.generate(2, 10, 12, generator=torch.Generator().manual_seed(4))
    blank, holes = torch.zeros(2, 1, 10, 12), torch.ones(2, 1, 10, 12)
    assert generated.shape == (2, 1, 10, 12) and set(generated.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(generated, model.naive_sample(blank, holes, generator=torch.Generator().manual_seed(4)))


def test_conf_mnist_is_the_original_pixelcnn():
    params = environment_parameters("mnist")
    assert params["data_processing"]["source"]["kind"] == "mnist"
    preprocessing = params["data_processing"]["preprocessing"]
    assert (preprocessing["image_size"], preprocessing["color_mode"], preprocessing["binarize"]) == (28, "L", 0.5)
    block = params["pixelcnn"]
    model = make_model("pixelcnn", in_channels=1, **{k: v for k, v in block["model"].items() if k != "kind"})
    config = model.config
    assert (config.conditional, config.gated, config.output, config.hidden, config.n_blocks) == (
        False,
        False,
        "bernoulli",
        64,
        4,
    )
    # 7x7 mask-A convolution (stored as its causal half) -> 4 residual blocks -> head, no conditioning
    assert model.conditioning is None and isinstance(model.trunk.first, MaskedConv2d)
    assert model.trunk.first.weight.shape == (64, 1, 4, 7) and model.trunk.first.mask[:, :, -1, 3].sum() == 0
    assert len(model.trunk.layers) == 4 and all(isinstance(b, ResidualBlock) for b in model.trunk.layers)
    assert all(block.cond is None for block in model.trunk.layers) and model.trunk.first_cond is None
    assert [m.weight.shape[1] for m in model.head if isinstance(m, MaskedConv2d)] == [64, 64]
    images = (torch.rand(2, 1, 28, 28) > 0.5).float()
    logits = model(images, torch.zeros(2, 1, 28, 28))
    assert logits.shape == (2, 1, 1, 28, 28)  # one Bernoulli logit per pixel: BCE on every pixel
    bce = F.binary_cross_entropy_with_logits(logits[:, :, 0], images)
    assert torch.allclose(model.losses(images, torch.zeros(2, 1, 28, 28))["loss"], bce)
    training = training_parameters(block["training"], "pixelcnn.training")
    assert (training.optimizer, training.lr, training.batch_size, training.epochs) == ("adam", 0.001, 64, 30)
    assert training.select_on == "val_nll_bpd" and training.random_masks is None
