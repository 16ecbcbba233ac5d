"""Discretised logistic mixture: normalisation, direct vs table form, known cases, stability, sampling."""

import math

import pytest
import torch
import torch.nn.functional as F

from pixelheal.models.autoregressive import LEVELS, Draw
from pixelheal.models.logistic_mixture import HALF_BIN, LogisticMixture, log_bin_probability, to_unit


def _params(mixture: LogisticMixture, n: int, spread: float, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, mixture.width, generator=torch.Generator().manual_seed(seed), dtype=dtype) * spread


def _block(means: list[float], log_scales: list[float], weights: list[float] | None = None) -> torch.Tensor:
    """A channel-0 block (1, 3K) of the given components (weights as probabilities)."""
    weights = weights or [1.0] * len(means)
    return torch.tensor([[*map(math.log, weights), *means, *log_scales]], dtype=torch.float64)


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def test_layout_has_the_pixelcnn_plus_plus_width_and_colour_groups():
    mixture = LogisticMixture(channels=3, mixtures=5)
    assert mixture.widths == [15, 20, 25] and mixture.width == 3 * 3 * 5 + 5 * 3 * 2 // 2
    assert torch.bincount(mixture.groups()).tolist() == [15, 20, 25]
    assert mixture.groups().tolist() == sorted(mixture.groups().tolist())  # channel-major blocks
    assert LogisticMixture(channels=1, mixtures=10).width == 30


@pytest.mark.parametrize("spread", [1.0, 8.0, 40.0])  # 40: log scales far past both clamps, means far outside
def test_the_256_probabilities_sum_to_one(spread):
    mixture = LogisticMixture(channels=3, mixtures=4)
    params = _params(mixture, 64, spread)
    x = torch.rand(64, 3, dtype=torch.float64) * 2 - 1
    table = mixture.table(params, x)  # (64, 3, 256)
    assert table.shape == (64, 3, LEVELS) and torch.isfinite(table).all()
    assert torch.allclose(table.exp().sum(-1), torch.ones(64, 3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(table.logsumexp(-1), torch.zeros(64, 3, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_direct_log_prob_is_the_table_entry(dtype, atol):
    mixture = LogisticMixture(channels=3, mixtures=3)
    params = _params(mixture, 200, 3.0, dtype)
    values = torch.randint(0, LEVELS, (200, 3), generator=torch.Generator().manual_seed(1))
    values[:4] = torch.tensor([0, 255, 1])  # the edge bins and a neighbour
    x = to_unit(values, dtype)  # the pixel's own channels: channel c reads only those before it
    table = mixture.table(params, x)
    direct = mixture.log_prob(params, x, values)
    assert torch.allclose(direct, table.gather(-1, values[..., None])[..., 0], atol=atol)


def test_a_single_logistic_gives_the_hand_computed_bin_masses():
    mixture = LogisticMixture(channels=1, mixtures=1)
    scale = 0.3
    table = mixture.table(_block([0.1], [math.log(scale)]), torch.zeros(1, 1, dtype=torch.float64))[0, 0]
    x = 2 * 130 / 255 - 1
    middle = _sigmoid((x + HALF_BIN - 0.1) / scale) - _sigmoid((x - HALF_BIN - 0.1) / scale)
    assert table[130].exp().item() == pytest.approx(middle, rel=1e-10)
    assert table[0].exp().item() == pytest.approx(_sigmoid((-1 + HALF_BIN - 0.1) / scale), rel=1e-10)  # lower tail
    assert table[255].exp().item() == pytest.approx(1 - _sigmoid((1 - HALF_BIN - 0.1) / scale), rel=1e-10)


def test_a_mixture_is_the_weighted_sum_of_its_components():
    mixture = LogisticMixture(channels=1, mixtures=2)
    earlier = torch.zeros(1, 0, dtype=torch.float64)
    both = mixture.channel_table(_block([-0.5, 0.4], [-2.0, -3.0], [0.3, 0.7]), earlier).exp()
    single = LogisticMixture(channels=1, mixtures=1)
    first = single.channel_table(_block([-0.5], [-2.0]), earlier).exp()
    second = single.channel_table(_block([0.4], [-3.0]), earlier).exp()
    assert torch.allclose(both, 0.3 * first + 0.7 * second, atol=1e-14)


def test_bits_of_a_sharp_logistic_centred_on_a_bin():
    mixture = LogisticMixture(channels=1, mixtures=1)
    centre = to_unit(torch.tensor(77), torch.float64).item()
    params = _block([centre], [-20.0])  # clamped to the sharpest scale, e^-7
    bits = -mixture.log_prob(params, torch.zeros(1, 1), torch.tensor([[77]]))[0, 0].item() / math.log(2)
    assert bits == pytest.approx(-math.log2(1 - 2 * _sigmoid(-HALF_BIN * math.exp(7))), rel=1e-9)
    assert bits < 0.05


def test_channel_means_move_with_the_earlier_channels():
    mixture = LogisticMixture(channels=2, mixtures=1)
    green = torch.tensor([[0.0, 0.2, -2.0, 0.8]], dtype=torch.float64)  # weight, mean, log scale, coefficient
    red = torch.tensor([[-0.6]], dtype=torch.float64)
    shifted = mixture.channel_table(green, red)
    expected = mixture.channel_table(torch.tensor([[0.0, 0.2 + math.tanh(0.8) * -0.6, -2.0]]), red[:, :0])
    assert torch.allclose(shifted, expected.double(), atol=1e-6)


def test_stable_where_the_cdf_difference_underflows():
    # 80 scales above the mean: in float32 both CDFs round to 1, their difference to 0; the reference
    # code then takes the density at the bin centre, which is accurate here (a bin spans 0.02 scales).
    means, log_scales, values = torch.tensor([-80 * math.e + 0.9]), torch.tensor([1.0]), torch.tensor([250])
    centre = to_unit(values) - means
    inverse = math.exp(-1.0)
    assert (torch.sigmoid((centre + HALF_BIN) * inverse) - torch.sigmoid((centre - HALF_BIN) * inverse)).item() == 0
    ours = log_bin_probability(values, means, log_scales)
    z = centre * inverse
    mid_point = z - log_scales - 2 * F.softplus(z) - math.log(127.5)  # log density * bin width, as the reference
    exact = log_bin_probability(values, means.double(), log_scales.double())
    assert torch.isfinite(ours).all() and ours.item() < -70
    assert ours.item() == pytest.approx(mid_point.item(), abs=1e-3)
    assert ours.item() == pytest.approx(exact.item(), rel=1e-6)


def test_draws_from_the_table_follow_its_distribution():
    mixture = LogisticMixture(channels=1, mixtures=3)
    params = _block([-0.3, 0.2, 0.9], [-2.5, -3.5, -4.0], [0.5, 0.3, 0.2]).float()
    table = mixture.channel_table(params, torch.zeros(1, 0))  # (1, 256)
    n = 200_000
    draw = Draw(greedy=False, temperature=1.0, batch=n, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(draw(table.expand(n, -1), torch.arange(n)), minlength=LEVELS).double()
    p = table[0].double().exp()
    expected = n * p
    # chi-square over the bins expected to hold at least 5 draws (the rest pooled), against df + 5 sd
    big = expected >= 5
    observed = torch.cat([counts[big], counts[~big].sum()[None]])
    wanted = torch.cat([expected[big], expected[~big].sum()[None]])
    chi2, df = ((observed - wanted) ** 2 / wanted).sum().item(), len(wanted) - 1
    assert chi2 < df + 5 * math.sqrt(2 * df)
    greedy = Draw(greedy=True, temperature=1.0, batch=1)(table, torch.zeros(1, dtype=torch.long))
    assert greedy.item() == p.argmax().item()
