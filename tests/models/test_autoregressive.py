"""The shared autoregressive core: the draw, bits/dim, and the base's likelihood and samplers on a toy model."""

import math

import pytest
import torch
import torch.nn.functional as F

from pixelheal.models.autoregressive import LEVELS, AutoregressiveInpainter, Draw, bits_per_dim, hole_positions

PROBS = torch.tensor([0.1, 0.2, 0.3, 0.4])


def _draws(draw: Draw, logits: torch.Tensor) -> torch.Tensor:
    return draw(logits, torch.arange(len(logits)))


def test_greedy_draw_is_the_arg_max_and_the_sign_for_bernoulli():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0], [5.0, -1.0, 0.0, 4.0]])
    assert _draws(Draw(greedy=True, temperature=1.0, batch=2), logits).tolist() == [1, 0]
    binary = Draw(greedy=True, temperature=1.0, batch=3, bernoulli=True)
    assert _draws(binary, torch.tensor([[0.5], [-0.5], [2.0]])).tolist() == [1, 0, 1]


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_sampled_draw_follows_the_tempered_distribution(temperature):
    n = 40_000
    draw = Draw(greedy=False, temperature=temperature, batch=n, generator=torch.Generator().manual_seed(0))
    values = _draws(draw, PROBS.log().expand(n, -1))
    tempered = PROBS ** (1 / temperature) / (PROBS ** (1 / temperature)).sum()
    assert torch.allclose(torch.bincount(values, minlength=4) / n, tempered, atol=0.01)


def test_bernoulli_draw_follows_the_sigmoid():
    n = 40_000
    draw = Draw(greedy=False, temperature=1.0, batch=n, bernoulli=True, generator=torch.Generator().manual_seed(0))
    values = _draws(draw, torch.full((n, 1), math.log(0.3 / 0.7)))
    assert values.float().mean() == pytest.approx(0.3, abs=0.01)


def test_draw_is_the_inverse_cdf_of_one_uniform_per_batch_image():
    logits = torch.randn(6, LEVELS, generator=torch.Generator().manual_seed(1))
    rows = torch.tensor([1, 4])  # only two images have a hole here, but all six draw a uniform
    generator = torch.Generator().manual_seed(2)
    values = Draw(greedy=False, temperature=1.0, batch=6, generator=generator)(logits[rows], rows)
    u = torch.rand(6, generator=torch.Generator().manual_seed(2))[rows]
    cdf = logits[rows].softmax(1).cumsum(1)
    for value, ui, row_cdf in zip(values.tolist(), u, cdf):
        assert (value == 0 or row_cdf[value - 1] < ui) and ui <= row_cdf[value] + 1e-6
    following = torch.Generator().manual_seed(2)
    torch.rand(6, generator=following)
    assert torch.equal(torch.rand(3, generator=generator), torch.rand(3, generator=following))


def test_draw_never_picks_past_the_last_level():
    logits = torch.full((1000, 3), -1e4)
    logits[:, 0] = 0  # all the mass on the first level: the cdf is [1, 1, 1]
    draw = Draw(greedy=False, temperature=1.0, batch=1000, generator=torch.Generator().manual_seed(0))
    assert _draws(draw, logits).max() == 0


def test_bits_per_dim_of_a_known_case_and_nan_for_an_empty_hole():
    nats = torch.tensor([6 * math.log(2), 0.0, 3.0])
    out = bits_per_dim(nats, torch.tensor([3.0, 0.0, 1.0]))
    assert out[0] == pytest.approx(2.0) and math.isnan(out[1]) and out[2] == pytest.approx(3 / math.log(2))


def test_hole_positions_are_in_raster_order_with_the_holed_images():
    masks = torch.zeros(2, 1, 3, 3)
    masks[0, 0, 2, 0] = masks[1, 0, 0, 2] = masks[0, 0, 0, 2] = 1
    positions = [(i, j, rows.tolist()) for i, j, rows in hole_positions(masks)]
    assert positions == [(0, 2, [0, 1]), (2, 0, [0])]


class CopyPrevious(AutoregressiveInpainter):
    """Toy model: each sub-pixel's logits peak at the previous sub-pixel's value (raster, channels inside)."""

    def __init__(self, channels: int = 2, sampling: str = "sample", sharpness: float = 3.0) -> None:
        super().__init__(channels, sampling=sampling, temperature=1.0)
        self.sharpness = sharpness

    def _peaked(self, previous: torch.Tensor) -> torch.Tensor:
        return F.one_hot(previous, LEVELS).float() * self.sharpness  # (..., 256)

    def logits(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        values = self.quantise(images)  # (B, C, H, W)
        b, c, h, w = values.shape
        raster = values.permute(0, 2, 3, 1).flatten(1)  # (B, H*W*C)
        previous = F.pad(raster, (1, 0))[:, :-1].view(b, h, w, c)
        return self._peaked(previous).permute(0, 3, 4, 1, 2)  # (B, C, 256, H, W)

    def fill_raster(self, images, masks, values, choose):
        values = values.clone()
        for i, j, rows in hole_positions(masks):
            for c in range(self.channels):
                if c:
                    previous = values[rows, c - 1, i, j]
                elif i or j:
                    pi, pj = divmod(i * values.shape[-1] + j - 1, values.shape[-1])
                    previous = values[rows, -1, pi, pj]
                else:
                    previous = torch.zeros_like(rows)
                values[rows, c, i, j] = choose(self._peaked(previous), rows, values[rows, c, i, j])
        return values


def _batch(n: int = 3, channels: int = 2, size: int = 5):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, size, size), generator=g).float() / 255
    masks = (torch.rand(n, 1, size, size, generator=g) < 0.4).float()
    masks[-1] = 0  # an image without a hole
    return images, masks


def test_likelihood_is_the_hole_cross_entropy_with_nan_for_an_empty_hole():
    model = CopyPrevious(sharpness=0.0)  # uniform over 256 levels: exactly 8 bits per sub-pixel
    images, masks = _batch()
    bpd = model.test_metrics(images, masks)["nll_bpd"]
    assert torch.allclose(bpd[:2], torch.full((2,), 8.0)) and math.isnan(bpd[2])
    terms = model.losses(images, masks)
    assert terms["loss"].item() == pytest.approx(8 * math.log(2)) and terms["nll_bpd"].item() == pytest.approx(8)
    assert model.validation_step(images, masks) == pytest.approx({"loss": 8 * math.log(2), "nll_bpd": 8.0})
    assert model.losses(images, torch.zeros_like(masks))["loss"].item() == 0


def test_naive_sampler_feeds_its_draws_back_in_raster_order():
    model = CopyPrevious(sampling="greedy")
    images, masks = _batch()
    out = model.naive_sample(images, masks)
    raster, holes = (out * 255).round().long().permute(0, 2, 3, 1).flatten(1), masks.bool().expand_as(images)
    hole_raster = holes.permute(0, 2, 3, 1).flatten(1)
    previous = torch.cat([torch.zeros_like(raster[:, :1]), raster[:, :-1]], 1)
    assert torch.equal(raster[hole_raster], previous[hole_raster])  # each hole copies the sub-pixel before it
    assert torch.equal(out[~holes], images[~holes])


@pytest.mark.parametrize("greedy", [True, False])
def test_fast_path_equals_the_naive_sampler_with_the_same_seed(greedy):
    model = CopyPrevious()
    images, masks = _batch()
    fast = model.sample(images, masks, greedy=greedy, generator=torch.Generator().manual_seed(3))
    naive = model.naive_sample(images, masks, greedy=greedy, generator=torch.Generator().manual_seed(3))
    assert torch.equal(fast, naive)
    assert torch.allclose(model.sampler_nll_bpd(images, masks)[:2], model.test_metrics(images, masks)["nll_bpd"][:2])


def test_samples_are_drawn_as_one_batch_and_global_rng_is_the_default():
    model = CopyPrevious(sampling="greedy")  # inpaint_samples samples whatever `sampling` says
    images, masks = _batch()
    samples = model.inpaint_samples(images, masks, 2, generator=torch.Generator().manual_seed(4))
    batched = model.sample(
        images.repeat(2, 1, 1, 1), masks.repeat(2, 1, 1, 1), greedy=False, generator=torch.Generator().manual_seed(4)
    )
    assert torch.equal(torch.cat(samples), batched) and not torch.equal(samples[0], samples[1])
    torch.manual_seed(5)
    first = model.sample(images, masks, greedy=False)
    assert torch.equal(first, model.sample(images, masks, greedy=False, generator=torch.Generator().manual_seed(5)))
    assert torch.equal(model.inpaint(images, masks), model.sample(images, masks, greedy=True))


def test_invalid_sampling_arguments_and_inputs_are_named():
    model = CopyPrevious()
    images, masks = _batch()
    with pytest.raises(ValueError, match="temperature"):
        model.sample(images, masks, temperature=0)
    with pytest.raises(ValueError, match="n_samples"):
        model.inpaint_samples(images, masks, 0)
    with pytest.raises(ValueError, match="in_channels=2"):
        model.test_metrics(images[:, :1], masks)
    with pytest.raises(ValueError, match="masks"):
        model.sample(images, masks[:, :, 1:])


def test_generate_samples_every_pixel_of_a_blank_canvas():
    model = CopyPrevious(sampling="greedy")  # generate always samples, whatever `sampling` says
    out = model.generate(3, 4, 5, generator=torch.Generator().manual_seed(6))
    canvas, holes = torch.zeros(3, 2, 4, 5), torch.ones(3, 1, 4, 5)
    assert out.shape == (3, 2, 4, 5) and torch.equal(out * 255, (out * 255).round())
    assert torch.equal(out, model.sample(canvas, holes, greedy=False, generator=torch.Generator().manual_seed(6)))
    assert torch.equal(out, model.naive_sample(canvas, holes, greedy=False, generator=torch.Generator().manual_seed(6)))
    assert not torch.equal(out[0], out[1])  # sampled, not the greedy chain of one value
    again = model.generate(3, 4, 5, generator=torch.Generator().manual_seed(6))
    assert torch.equal(again, out)


@pytest.mark.parametrize("n, height, width", [(0, 4, 4), (2, 0, 4), (2, 4, -1)])
def test_generate_refuses_an_empty_canvas(n, height, width):
    with pytest.raises(ValueError, match="generate needs n, height and width of at least 1"):
        CopyPrevious().generate(n, height, width)
