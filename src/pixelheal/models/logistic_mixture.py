"""Discretised logistic mixture likelihood of 8-bit sub-pixels (PixelCNN++, Salimans et al. 2017).

Sub-pixel values v in 0..255 sit at x = v * 2/255 - 1 in [-1, 1], each the centre of a bin of width
2/255; the edge bins take the tails (v = 0 everything below, v = 255 everything above). Channel c of
a pixel has its own mixture of K logistics (weights, means, log scales), and its component means get
the linear colour term sum_{c' < c} tanh(coeff_{c, c', k}) * x_{c'} over the pixel's earlier channels.

Mixture weights are per channel, not one component indicator shared by the pixel's channels as in
PixelCNN++: with per-channel weights p(x_c | x_<c) is itself a mixture, so every sub-pixel has an
exact 256-way table on its own and the autoregressive core (one draw per sub-pixel, R → G → B)
serves the mixture unchanged; a shared indicator would need the posterior over components given
the earlier channels at every step.

Parameters of channel c, a block of 3K + K*c numbers: K weight logits, K means, K log scales, then
the K*c colour coefficients (c' major); the blocks of the C channels follow one another, so a pixel
has C*3K + K*C*(C-1)/2 parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pixelheal.models.autoregressive import LEVELS

HALF_BIN = 1 / (LEVELS - 1)  # half a bin's width on [-1, 1]
# As the reference code: a component sharper than this already fits inside one bin (2/255 ≈ e^-4.8);
# the upper bound keeps 1/scale a normal float (a scale e^7 is flat over [-1, 1] anyway).
LOG_SCALE_MIN, LOG_SCALE_MAX = -7.0, 7.0
# Where a model whose means start at an interpolated fill starts its log scales: e^-2.5 = 0.08 on [-1, 1],
# about the error of a biharmonic fill on CIFAR-10 holes.
MIXTURE_LOG_SCALE = -2.5


def to_unit(values: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sub-pixel values 0..255 → the bin centres in [-1, 1]."""
    return values.to(dtype) * (2 * HALF_BIN) - 1


def log_bin_probability(values: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor) -> torch.Tensor:
    """log P(bin `values`) under logistics (means, log scales), broadcast together.

    Uses sigmoid(a) - sigmoid(b) = sigmoid(a) * sigmoid(-b) * (1 - exp(b - a)) for the bin [b, a],
    so the log is a sum of log-sigmoids and one log(-expm1(.)) of the bin width: exact wherever the
    CDF difference underflows (where the reference code falls back to the density at the centre).
    """
    inverse = torch.exp(-log_scales.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX))
    centred = to_unit(values, means.dtype) - means
    below = F.logsigmoid((centred + HALF_BIN) * inverse)  # log CDF at the upper edge
    above = F.logsigmoid(-(centred - HALF_BIN) * inverse)  # log (1 - CDF) at the lower edge
    width = torch.log(-torch.expm1(-2 * HALF_BIN * inverse))
    zero = torch.zeros_like(below)
    top, bottom = values < LEVELS - 1, values > 0  # the edge bins take the tails
    return torch.where(top, below, zero) + torch.where(bottom, above, zero) + torch.where(top & bottom, width, zero)


@dataclass(frozen=True)
class LogisticMixture:
    """The layout of `mixtures` logistics per sub-pixel for `channels` colour channels, and their log-probabilities."""

    channels: int
    mixtures: int

    @property
    def widths(self) -> list[int]:
        """Parameters of each channel's block: 3K, plus K colour coefficients per earlier channel."""
        return [(3 + c) * self.mixtures for c in range(self.channels)]

    @property
    def width(self) -> int:
        """Parameters per pixel: C*3K + K*C*(C-1)/2."""
        return sum(self.widths)

    def groups(self) -> torch.Tensor:
        """Colour group of every parameter (width,): channel c's block belongs to group c (for masked heads)."""
        return torch.repeat_interleave(torch.arange(self.channels), torch.tensor(self.widths))

    def _components(
        self, block: torch.Tensor, earlier: torch.Tensor, prior: torch.Tensor | None
    ) -> tuple[torch.Tensor, ...]:
        """Log weights, means and log scales (..., K) of one channel c from its block and earlier values (..., c).

        `prior` (..., c + 1), in [-1, 1], is where the means start (an interpolated fill): channel c's means
        are offsets from prior[..., c], and the colour term reads the earlier channels' departures from theirs.
        """
        k = self.mixtures
        # float32 even under bfloat16 autocast: a bf16 mean near 1 resolves 1/128, the width of a whole bin.
        dtype = torch.promote_types(block.dtype, torch.float32)
        block, earlier = block.to(dtype), earlier.to(dtype)
        means = block[..., k : 2 * k]
        if prior is not None:
            prior = prior.to(dtype)
            means = means + prior[..., -1:]
            earlier = earlier - prior[..., :-1]
        coefficients = torch.tanh(block[..., 3 * k :].unflatten(-1, (earlier.shape[-1], k)))  # (..., c, K)
        means = means + (coefficients * earlier[..., None]).sum(-2)
        return F.log_softmax(block[..., :k], dim=-1), means, block[..., 2 * k : 3 * k]

    def channel_log_prob(
        self, block: torch.Tensor, earlier: torch.Tensor, values: torch.Tensor, prior: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log p(values (...)) of one channel: its block (..., 3K + K*c), the pixel's earlier channels (..., c) in [-1, 1]."""
        log_weights, means, log_scales = self._components(block, earlier, prior)
        return torch.logsumexp(log_weights + log_bin_probability(values[..., None], means, log_scales), dim=-1)

    def channel_table(
        self, block: torch.Tensor, earlier: torch.Tensor, prior: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The 256 log-probabilities (..., 256) of one channel: logits that are their own log-softmax."""
        prior = None if prior is None else prior[..., None, :]
        log_weights, means, log_scales = self._components(block[..., None, :], earlier[..., None, :], prior)
        levels = torch.arange(LEVELS, device=block.device)[:, None]  # (256, 1) against (..., 1, K)
        return torch.logsumexp(log_weights + log_bin_probability(levels, means, log_scales), dim=-1)

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-pixel parameters (..., width) → each channel's block."""
        return params.split(self.widths, dim=-1)

    def log_prob(
        self, params: torch.Tensor, x: torch.Tensor, values: torch.Tensor, prior: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log p (..., C) of `values` (..., C) given the parameters (..., width), the pixels `x` (..., C) in [-1, 1]
        and optionally the means' starting point `prior` (..., C)."""
        return torch.stack(
            [
                self.channel_log_prob(b, x[..., :c], values[..., c], _upto(prior, c))
                for c, b in enumerate(self.split(params))
            ],
            -1,
        )

    def table(self, params: torch.Tensor, x: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """Log-probability tables (..., C, 256); channel c's reads only the channels < c of `x` (..., C)."""
        return torch.stack(
            [self.channel_table(b, x[..., :c], _upto(prior, c)) for c, b in enumerate(self.split(params))], -2
        )

    def slots(self, part: str) -> torch.Tensor:
        """Indices, in a pixel's parameters (width,), of every channel's K "means" or K "log_scales"."""
        offset = {"means": 1, "log_scales": 2}[part] * self.mixtures
        starts = torch.tensor([0, *self.widths[:-1]]).cumsum(0)
        return (starts[:, None] + offset + torch.arange(self.mixtures)).flatten()

    @torch.no_grad()
    def start_at_prior(self, weight: torch.Tensor, bias: torch.Tensor, channels: torch.Tensor | None = None) -> None:
        """Initialise a last layer (out rows first) so that its means start at the prior and its scales at
        MIXTURE_LOG_SCALE: zero mean and log-scale rows (they still learn: the features feeding them are not zero).

        `channels` picks this layer's rows out of a pixel's parameters (a per-channel head), None: all of them.
        """
        means, scales = self.slots("means"), self.slots("log_scales")
        if channels is not None:
            means, scales = _local(means, channels), _local(scales, channels)
        weight[means] = 0
        weight[scales] = 0
        bias[means] = 0
        bias[scales] = MIXTURE_LOG_SCALE


def _local(slots: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The positions within `rows` (a layer's share of a pixel's parameters) of the `slots` among them."""
    return torch.nonzero(torch.isin(rows, slots)).flatten()


def _upto(prior: torch.Tensor | None, c: int) -> torch.Tensor | None:
    """The prior of channels 0..c (..., c + 1), or None."""
    return None if prior is None else prior[..., : c + 1]
