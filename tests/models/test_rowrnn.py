"""Row-RNN inpainter: causality, conditioning without leaks, sampling, fast vs naive sampler, training."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelheal.models import make_model
from pixelheal.models.autoregressive import AutoregressiveInpainter
from pixelheal.models.fills import fill_holes
from pixelheal.models.rowrnn import HOLE, INFILL, START, VOCAB, RowRNNInpainter, row_recurrence, stacked_gru_weights
from pixelheal.pipelines.train.nodes import training_parameters
from pixelheal.training import TrainConfig, train
from tests.conftest import environment_parameters

TINY = {"embed_dim": 8, "hidden": 12, "n_layers": 2}
MIXTURE_FILL = {"output": "logistic_mixture", "mixtures": 3, "cond_fill": "biharmonic"}


def _model(channels: int = 3, seed: int = 0, **kw) -> RowRNNInpainter:
    torch.manual_seed(seed)
    return make_model("rowrnn", in_channels=channels, **{**TINY, **kw}).eval()


def _batch(channels: int = 3, size: int = 7, n: int = 3, p: float = 0.35, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, size, size), generator=g).float() / 255
    masks = (torch.rand(n, 1, size, size, generator=g) < p).float()
    return images, masks


def _rows_one_by_one(x, grus, aboves):
    """The row recurrence as first written: row after row, nn.GRU per group, above = Linear(row above, shifted)."""
    per_group = []
    for rows, gru, above in zip(x, grus, aboves):  # rows (B, R, S, D)
        previous = rows.new_zeros(rows.shape[0], rows.shape[2], gru.hidden_size)
        outputs = []
        for row in rows.unbind(1):
            shifted = torch.cat([previous[:, 1:], previous[:, -1:]], dim=1)  # step k sees step k+1 of the row above
            previous = gru(row + above(shifted))[0]
            outputs.append(previous)
        per_group.append(torch.stack(outputs[1:], dim=1))
    return torch.stack(per_group)


@pytest.mark.parametrize("n_layers, rows, steps", [(1, 4, 5), (2, 5, 3), (3, 6, 7), (3, 2, 1), (2, 3, 9)])
def test_row_recurrence_is_each_row_after_the_other_with_nn_gru_and_the_same_gradients(n_layers, rows, steps):
    torch.manual_seed(0)
    grus = torch.nn.ModuleList(torch.nn.GRU(5, 4, n_layers, batch_first=True) for _ in range(3))
    aboves = torch.nn.ModuleList(torch.nn.Linear(4, 5) for _ in range(3))
    x = torch.randn(3, 2, rows, steps, 5, requires_grad=True)
    weight = torch.stack([linear.weight for linear in aboves]).transpose(1, 2)
    bias = torch.stack([linear.bias for linear in aboves])[:, None]
    wavefront = row_recurrence(x, stacked_gru_weights(grus), weight, bias)
    reference = _rows_one_by_one(x, grus, aboves)
    assert wavefront.shape == (3, 2, rows - 1, steps, 4)
    assert torch.allclose(wavefront, reference, atol=1e-6)
    weights = [x, *grus.parameters(), *aboves.parameters()]
    for mine, theirs in zip(
        torch.autograd.grad(wavefront.pow(2).sum(), weights), torch.autograd.grad(reference.pow(2).sum(), weights)
    ):
        assert torch.allclose(mine, theirs, atol=1e-5)


@pytest.mark.parametrize(
    "name, value",
    [
        ("hidden", 0),
        ("embed_dim", -1),
        ("n_layers", 1.5),
        ("in_channels", 0),
        ("hidden", "8"),
        ("sampling", "beam"),
        ("temperature", 0.0),
        ("temperature", "hot"),
        ("n_layer", 2),
        ("colour_conditioning", "output"),
        ("output", "bernoulli"),
        ("mixtures", 0),
        ("cond_fill", "telea"),
    ],
)
def test_invalid_hyper_parameter_is_named(name, value):
    with pytest.raises(ValueError, match=rf"^rowrnn\.model\.{name}: "):
        make_model("rowrnn", **{name: value})


def test_wrong_channel_count_is_named():
    images, masks = _batch(channels=1)
    with pytest.raises(ValueError, match="in_channels"):
        _model(3).losses(images, masks)


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_backprop(channels):
    model = _model(channels).train()
    images, masks = _batch(channels)
    assert model.logits(images, masks).shape == (3, channels, 256, 7, 7)
    assert torch.equal(model(images, masks), model.logits(images, masks))  # forward: the teacher-forced logits
    loss = model.losses(images, masks)["loss"]
    assert loss.item() == pytest.approx(math.log(256), rel=0.05)  # untrained ≈ uniform over 256 levels
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("channels, options", [(1, {}), (3, {}), (3, MIXTURE_FILL)])
def test_logits_depend_only_on_earlier_sub_pixels(channels, options):
    size = 5
    model = _model(channels, **options)
    with torch.no_grad():  # a mixture starting at its fill has identical components, hiding what its weights read
        for parameter in model.heads.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    images, masks = _batch(channels, size=size, n=1)
    # One copy of the image per output sub-pixel (c, i, j): batch items are independent, so a single
    # backward pass of the sum of "copy n's chosen logits" gives every output's gradient at once.
    targets = [(c, i, j) for i in range(size) for j in range(size) for c in range(channels)]
    n = len(targets)
    onehot = F.one_hot((images * 255).round().long(), 256).float().repeat(n, 1, 1, 1, 1).requires_grad_()
    logits = model.logits(images.repeat(n, 1, 1, 1), masks.repeat(n, 1, 1, 1), onehot)  # (n, C, 256, H, W)
    assert torch.allclose(logits[:1], model.logits(images, masks), atol=1e-6)  # the one-hot path is the token path
    chosen = torch.stack([logits[k, c, :, i, j] for k, (c, i, j) in enumerate(targets)])
    (grad,) = torch.autograd.grad(chosen.sum(), onehot)
    seen = grad.abs().sum(-1) > 0  # (n, C, H, W): which autoregressive inputs each output depends on
    order = (torch.arange(size)[:, None] * size + torch.arange(size)).expand(channels, size, size)
    channel = torch.arange(channels)[:, None, None]
    for k, (c, i, j) in enumerate(targets):
        later = (order > i * size + j) | ((order == i * size + j) & (channel >= c))
        assert not seen[k][later].any(), f"logits at ({i}, {j}, channel {c}) see a later sub-pixel"
        assert seen[k, :c, i, j].all()  # colour conditioning R → G → B
        if j > 0:
            assert seen[k, :, i, j - 1].all()  # the previous pixel of the row
        if i > 0:
            assert seen[k, :, i - 1, j].all()  # the pixel right above: information flows down


@pytest.mark.parametrize("colour_conditioning", ["input", "head"])
@pytest.mark.parametrize("options", [{}, MIXTURE_FILL])
def test_hole_values_do_not_leak_through_conditioning(colour_conditioning, options):
    model = _model(colour_conditioning=colour_conditioning, **options)
    images, masks = _batch()
    masks[:, :, 3, 4] = 1
    changed = images.clone()
    changed[:, :, 3, 4] = 1 - changed[:, :, 3, 4]  # the true value of a hole pixel changes
    a, b = model.logits(images, masks), model.logits(changed, masks)
    flat_a, flat_b = a.flatten(3), b.flatten(3)  # (B, C, 256, H*W): raster order
    position = 3 * 7 + 4
    assert torch.equal(flat_a[:, 0, :, : position + 1], flat_b[:, 0, :, : position + 1])  # red: nothing at or before
    assert torch.equal(flat_a[:, 1:, :, :position], flat_b[:, 1:, :, :position])
    assert not torch.equal(flat_a[:, 1:, :, position], flat_b[:, 1:, :, position])  # green sees the true red
    assert not torch.equal(flat_a[..., position + 1 :], flat_b[..., position + 1 :])  # later pixels see it


@pytest.mark.parametrize("channels", [1, 3])
def test_inpaint_keeps_known_pixels_and_fills_holes_with_levels(channels):
    model = _model(channels)
    images, masks = _batch(channels)
    out = model.inpaint(images, masks)
    known = masks.expand_as(images) == 0
    assert out.shape == images.shape
    assert torch.equal(out[known], images[known])
    assert torch.equal(out * 255, (out * 255).round())
    assert not torch.equal(out, images)


def test_an_empty_mask_returns_the_input():
    model = _model()
    images, _ = _batch()
    empty = torch.zeros(3, 1, 7, 7)
    assert torch.equal(model.inpaint(images, empty), images)
    assert torch.equal(model.naive_sample(images, empty), images)


def test_greedy_is_deterministic():
    model = _model(sampling="greedy")
    images, masks = _batch()
    torch.manual_seed(1)
    a = model.inpaint(images, masks)
    torch.manual_seed(2)
    assert torch.equal(a, model.inpaint(images, masks))


def test_seeded_sampling_is_reproducible():
    model = _model()
    images, masks = _batch()
    torch.manual_seed(5)
    a = model.inpaint(images, masks)
    torch.manual_seed(5)
    b = model.inpaint(images, masks)
    c = model.inpaint(images, masks)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_samples_are_diverse_and_keep_known_pixels():
    model = _model(sampling="greedy")  # inpaint_samples samples whatever `sampling` says
    images, masks = _batch()
    torch.manual_seed(0)
    samples = model.inpaint_samples(images, masks, 3)
    assert len(samples) == 3
    known = masks.expand_as(images) == 0
    for sample in samples:
        assert sample.shape == images.shape and torch.equal(sample[known], images[known])
    assert not torch.equal(samples[0], samples[1]) and not torch.equal(samples[1], samples[2])
    with pytest.raises(ValueError, match="n_samples"):
        model.inpaint_samples(images, masks, 0)


@pytest.mark.parametrize(
    "channels, greedy, options", [(1, True, {}), (3, True, {}), (3, False, {}), (3, False, MIXTURE_FILL)]
)
def test_fast_sampler_matches_the_naive_path(channels, greedy, options):
    model = _model(channels, **options).double()  # double: no near-tie argmax flips from summation order
    images, masks = _batch(channels, size=6)
    images, masks = images.double(), masks.double()
    masks[0] = 0  # an image without a hole in a batch with holes
    masks[1, :, 2] = 0  # a row with holes in one image only
    torch.manual_seed(3)
    fast = model.sample(images, masks, greedy=greedy)
    torch.manual_seed(3)
    naive = model.naive_sample(images, masks, greedy=greedy)
    assert torch.equal(fast, naive)
    assert torch.equal(fast[0], images[0])


@pytest.mark.parametrize("channels, options", [(1, {}), (3, {}), (3, MIXTURE_FILL)])
def test_nll_is_identical_between_the_teacher_forced_and_incremental_paths(channels, options):
    model = _model(channels, **options)
    images, masks = _batch(channels)
    masks[2] = 0
    full = model.test_metrics(images, masks)["nll_bpd"]
    incremental = model.sampler_nll_bpd(images, masks)
    assert full.shape == (3,)
    assert torch.allclose(full[:2], incremental[:2], rtol=1e-5)
    assert torch.isnan(full[2]) and torch.isnan(incremental[2])  # an empty hole has no likelihood
    if not options:
        assert 4 < full[0] < 12  # untrained softmax: spread wide over the 256 values (8 bits for uniform)


def test_an_untrained_mixture_with_a_fill_draws_around_the_fill():
    model = _model(**MIXTURE_FILL)
    images, masks = _batch()
    hole = masks[:, 0].bool()
    red_mode = model(images, masks)[:, 0].argmax(1)[hole]  # the red channel's most likely value per hole pixel
    red_fill = model.quantise(fill_holes(images, masks, "biharmonic"))[:, 0][hole]
    inside = (red_fill >= 48) & (red_fill <= 207)  # nearer an edge, the edge bin's tail can outweigh the mode
    assert inside.sum() > 10 and (red_mode - red_fill)[inside].abs().max() <= 1  # the means start at the fill
    assert all(torch.equal(h.bias[6:9], torch.full((3,), -2.5)) for h in model.heads)  # K = 3 log scales


def test_mixture_heads_and_direct_likelihood_equals_the_table():
    model = _model(**MIXTURE_FILL)
    assert [head.out_features for head in model.heads] == [9, 12, 15]  # 3K (+ K per earlier channel), not 256
    images, masks = _batch()
    where = masks[:, 0].bool().nonzero(as_tuple=True)
    values = model.quantise(images).permute(0, 2, 3, 1)[where]
    direct = model.hole_nll(images, masks, where, values)
    table = AutoregressiveInpainter.hole_nll(model, images, masks, where, values)  # cross-entropy of the 256-table
    assert direct.shape == (len(values), 3) and torch.allclose(direct, table, atol=1e-4)


def test_a_fill_gives_holes_the_fill_token_and_a_learnt_hole_embedding():
    model = _model(cond_fill="biharmonic")
    images, masks = _batch()
    tokens, hole = model.condition_tokens(images, masks), masks.bool().expand_as(images)
    filled = model.quantise(fill_holes(images, masks, "biharmonic"))
    assert torch.equal(tokens[hole], filled[hole] + HOLE) and torch.equal(tokens[~hole], model.quantise(images)[~hole])
    assert _model().hole is None and INFILL in _model().condition_tokens(images, masks)  # zero: the original
    # the hole embedding tells a hole from a known pixel of the same value
    known = masks.clone()
    known[:, :, 3, 4] = 0
    same = torch.where(masks.bool(), fill_holes(images, masks, "biharmonic"), images)
    with torch.no_grad():
        assert not torch.equal(model.logits(same, masks)[..., 3, 5], model.logits(same, known)[..., 3, 5])
    model.train().losses(images, masks)["loss"].backward()
    assert model.hole.grad.abs().sum() > 0


def test_mixture_with_a_fill_learns():
    model = _model(**MIXTURE_FILL).train()
    images, masks = _batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.losses(images, masks)["loss"].item()
    for _ in range(15):
        model.training_step(images, masks, {"model": optimizer})
    assert model.losses(images, masks)["loss"].item() < first


def test_validation_reports_loss_and_bits_per_dim():
    model = _model()
    images, masks = _batch()
    terms = model.validation_step(images, masks)
    assert set(terms) == {"loss", "nll_bpd"}
    assert terms["nll_bpd"] == pytest.approx(terms["loss"] / math.log(2))


def test_empty_holes_give_a_zero_loss_with_a_graph():
    model = _model().train()
    images, _ = _batch()
    loss = model.losses(images, torch.zeros(3, 1, 7, 7))["loss"]
    assert loss.item() == 0
    loss.backward()


def test_two_epochs_of_the_shared_loop():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 3, 8, 8), dtype=np.uint8)
    masks = (rng.random((24, 1, 8, 8)) < 0.3).astype(np.uint8)
    cfg = TrainConfig(epochs=2, batch_size=8, lr=0.01, device="cpu", select_on="val_nll_bpd")
    result = train(_model(), images, masks, np.arange(16), np.arange(16, 24), cfg)
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert {"train_loss", "val_loss", "val_nll_bpd"} <= set(result.history[0])
    assert result.best_epoch == min(result.history, key=lambda r: r["val_nll_bpd"])["epoch"]
    model = _model()
    model.load_state_dict(result.best_state)
    torch_images, torch_masks = torch.from_numpy(images[16:]).float() / 255, torch.from_numpy(masks[16:]).float()
    assert model.inpaint(torch_images, torch_masks).shape == torch_images.shape


# ----- the original: channel-independent GRUs, colour conditioning at the heads -------------------


def _seen(model: RowRNNInpainter, channels: int, size: int) -> tuple[list[tuple[int, int, int]], torch.Tensor]:
    """Per output sub-pixel (c, i, j): which AR inputs (C, H, W) its logits depend on (see the causality test)."""
    images, masks = _batch(channels, size=size, n=1)
    targets = [(c, i, j) for i in range(size) for j in range(size) for c in range(channels)]
    n = len(targets)
    onehot = F.one_hot((images * 255).round().long(), 256).float().repeat(n, 1, 1, 1, 1).requires_grad_()
    logits = model.logits(images.repeat(n, 1, 1, 1), masks.repeat(n, 1, 1, 1), onehot)
    assert torch.allclose(logits[:1], model.logits(images, masks), atol=1e-6)  # the one-hot path is the token path
    chosen = torch.stack([logits[k, c, :, i, j] for k, (c, i, j) in enumerate(targets)])
    (grad,) = torch.autograd.grad(chosen.sum(), onehot)
    return targets, grad.abs().sum(-1) > 0  # (n, C, H, W)


def test_head_conditioning_gives_each_gru_its_own_channel_and_the_heads_the_earlier_ones():
    size = 5
    model = _model(colour_conditioning="head")
    targets, seen = _seen(model, 3, size)
    order = torch.arange(size * size).view(size, size)
    for k, (c, i, j) in enumerate(targets):
        earlier = order < i * size + j
        assert not seen[k, :, order > i * size + j].any() and not seen[k, c:, i, j].any()  # causal
        assert seen[k, :c, i, j].all()  # the head: green sees red, blue sees red and green at this pixel
        others = [d for d in range(3) if d != c]
        assert not seen[k][others][:, earlier].any(), f"channel {c} at ({i}, {j}) reads another channel's past"
        if j > 0:
            assert seen[k, c, i, j - 1]  # its own channel of the previous pixel
        if i > 0:
            assert seen[k, c, i - 1, j]  # and of the pixel above


def test_head_conditioning_concatenates_the_embedded_earlier_channels_at_the_head():
    model = _model(colour_conditioning="head")
    assert [head.in_features for head in model.heads] == [12, 12 + 8, 12 + 2 * 8]  # hidden (+ embed per channel)
    assert [head.in_features for head in _model().heads] == [12, 12, 12]  # the default: the GRU state only
    assert model.embed.num_embeddings == _model().embed.num_embeddings  # both modes share the tables


@pytest.mark.parametrize("channels, greedy", [(1, True), (3, True), (3, False)])
def test_head_conditioning_fast_sampler_matches_the_naive_path(channels, greedy):
    model = _model(channels, colour_conditioning="head").double()
    images, masks = _batch(channels, size=6)
    images, masks = images.double(), masks.double()
    masks[0] = 0
    masks[1, :, 2] = 0
    fast = model.sample(images, masks, greedy=greedy, generator=torch.Generator().manual_seed(3))
    naive = model.naive_sample(images, masks, greedy=greedy, generator=torch.Generator().manual_seed(3))
    assert torch.equal(fast, naive) and torch.equal(fast[0], images[0])
    masks[2] = 0
    full, incremental = model.test_metrics(images, masks)["nll_bpd"], model.sampler_nll_bpd(images, masks)
    assert torch.allclose(full[1:2], incremental[1:2], rtol=1e-6) and torch.isnan(incremental[2])


def test_head_conditioning_trains_in_the_shared_loop():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 3, 6, 6), dtype=np.uint8)
    masks = (rng.random((16, 1, 6, 6)) < 0.3).astype(np.uint8)
    cfg = TrainConfig(epochs=2, batch_size=8, lr=0.01, device="cpu", select_on="val_nll_bpd")
    result = train(_model(colour_conditioning="head"), images, masks, np.arange(12), np.arange(12, 16), cfg)
    assert result.history[1]["train_loss"] < result.history[0]["train_loss"]


def test_conf_cartoon_is_the_original_row_rnn():
    params = environment_parameters("cartoon")
    preprocessing = params["data_processing"]["preprocessing"]
    assert (preprocessing["center_crop"], preprocessing["image_size"], preprocessing["color_mode"]) == (300, 36, "RGB")
    block = params["rowrnn"]
    model = make_model("rowrnn", in_channels=3, **{k: v for k, v in block["model"].items() if k != "kind"})
    assert model.config.colour_conditioning == "head"  # channel-independent GRUs, colour conditioning at the head
    assert len(model.grus) == 3 and all(gru.num_layers == 3 and gru.batch_first for gru in model.grus)
    assert all(gru.input_size == model.config.embed_dim for gru in model.grus)
    assert [head.in_features for head in model.heads] == [32, 32 + 64, 32 + 2 * 64]  # R; G sees R; B sees R, G
    assert (START, INFILL, VOCAB) == (256, 257, 258)  # 256 intensities + start token + infill token
    images, masks = _batch(3, size=36, n=1)
    assert model.logits(images, masks).shape == (1, 3, 256, 36, 36)  # a 256-way softmax per sub-pixel
    training = training_parameters(block["training"], "rowrnn.training")
    assert (training.optimizer, training.lr, training.batch_size, training.epochs) == ("adam", 0.001, 64, 15)
    assert training.select_on == "val_nll_bpd"
