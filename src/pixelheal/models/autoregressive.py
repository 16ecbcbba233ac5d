"""The shared core of the autoregressive inpainters (`pixelcnn`, `rowrnn`): they model p(hole | known pixels).

A model sees discrete sub-pixel values (256 intensity levels, or 0/1 for binarised images) in
raster order, colour channels R → G → B inside a pixel, and supplies two things:
  * `logits(images, masks)`: teacher-forced logits (B, C, K, H, W), K = 256 levels or 1 Bernoulli
    logit, where the logits at a sub-pixel read only the known pixels and the earlier sub-pixels (a
    logistic mixture output gives its exact 256 log-probabilities, see `logistic_mixture`);
  * `fill_raster(images, masks, values, choose)`: its fast path. It visits every hole sub-pixel in
    raster order and sets it to `choose(logits, rows, current)` before moving on (see `Chooser`).
This base turns that into the likelihood (cross-entropy of the true hole values only, since the
known pixels are given), sampling (`Draw`, through `fill_raster`), the naive reference sampler (one
full `logits` pass per hole position and channel) and the same likelihood through the fast path.

Random draws: at every (position, channel) where some image of the batch has a hole, one uniform per
batch image, from `generator` or else torch's global RNG, so the fast and naive samplers give the same
completion from the same seed (and a completion depends on the batch it was drawn in).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from pixelheal.models.base import InpaintingModel

Sampling = Literal["sample", "greedy"]
LEVELS = 256  # intensity levels of a sub-pixel: 0..255

Chooser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""(logits (b, K), batch rows (b,), values now at that sub-pixel (b,)) → the values to put there (b,)."""


def hole_flags(masks: torch.Tensor) -> torch.Tensor:
    """Bool hole map (B, 1, H, W) of float masks."""
    return masks > 0.5  # contract: 1 = hole, 0 = known


def hole_positions(masks: torch.Tensor) -> list[tuple[int, int, torch.Tensor]]:
    """(i, j, batch rows with a hole at (i, j)) in raster order, for the positions with a hole in any image."""
    hole = hole_flags(masks)[:, 0]  # (B, H, W)
    by_position = hole.permute(1, 2, 0)  # (H, W, B)
    return [(i, j, by_position[i, j].nonzero().squeeze(1)) for i, j in hole.any(0).nonzero().tolist()]


def bits_per_dim(nats: torch.Tensor, dims: torch.Tensor) -> torch.Tensor:
    """Per-image bits per sub-pixel (B,) from summed nats (B,) and sub-pixel counts (B,); NaN for an empty hole."""
    return torch.where(dims > 0, nats / (dims.clamp_min(1) * math.log(2)), torch.full_like(nats, math.nan))


@dataclass(frozen=True)
class Draw:
    """Discrete values from logits: the arg-max (`greedy`), or an inverse-CDF draw at `temperature`."""

    greedy: bool
    temperature: float
    batch: int  # images in the batch: every draw consumes one uniform per image
    bernoulli: bool = False  # one logit per sub-pixel (values 0/1) instead of one per level
    generator: torch.Generator | None = None  # None: torch's global RNG

    def __call__(self, logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Values (b,) for `logits` (b, K) of the batch images `rows` (b,)."""
        if self.greedy:
            return (logits[:, 0] > 0).long() if self.bernoulli else logits.argmax(1)
        # One uniform per batch image, hole there or not, so every sampler consumes the RNG alike.
        u = torch.rand(self.batch, generator=self.generator, device=logits.device, dtype=logits.dtype)[rows]
        if self.bernoulli:
            return (u < torch.sigmoid(logits[:, 0] / self.temperature)).long()
        cdf = torch.softmax(logits / self.temperature, dim=1).cumsum(1)  # (b, K)
        # u scaled by the total: u < 1, so the count stays below K even where rounding leaves cdf[-1] < 1.
        return (cdf < u[:, None] * cdf[:, -1:]).sum(1)


class AutoregressiveInpainter(InpaintingModel):
    """Base of the sampling architectures: likelihood, sampling and reference sampler over `logits`."""

    def __init__(self, in_channels: int, *, sampling: Sampling, temperature: float, bernoulli: bool = False) -> None:
        super().__init__()
        self.channels, self.bernoulli = in_channels, bernoulli
        self.greedy, self.temperature = sampling == "greedy", float(temperature)

    # ----- what a model supplies ---------------------------------------------------------------

    def logits(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, C, K, H, W): K = 256 levels, or 1 logit for binary sub-pixels."""
        raise NotImplementedError

    def fill_raster(
        self, images: torch.Tensor, masks: torch.Tensor, values: torch.Tensor, choose: Chooser
    ) -> torch.Tensor:
        """`values` (B, C, H, W) with every hole sub-pixel set by `choose` in raster order (the fast path).

        Each hole sub-pixel's logits read `values` at the earlier sub-pixels as they were set.
        """
        raise NotImplementedError

    def hole_logits(self, images: torch.Tensor, masks: torch.Tensor, where: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Teacher-forced logits (N, K, C) of the N hole pixels at `where` = (batch, row, column) indices."""
        # Models that can compute the logits of the hole pixels alone override this.
        return self.logits(images, masks).permute(0, 3, 4, 2, 1)[where]

    def hole_nll(
        self, images: torch.Tensor, masks: torch.Tensor, where: tuple[torch.Tensor, ...], values: torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced NLL in nats (N, C) of the true `values` (N, C) of the hole pixels at `where`."""
        # Models whose likelihood is cheaper at the true value than over all K levels override this.
        return self.nll_nats(self.hole_logits(images, masks, where), values)

    @property
    def samples_when_inpainting(self) -> bool:
        """`inpaint` draws a completion unless `sampling` is greedy."""
        return not self.greedy

    @property
    def unconditional(self) -> bool:
        """True for a density of every pixel (nothing conditioned on): its pictures are generations from a blank canvas."""
        return False

    # ----- discrete values ---------------------------------------------------------------------

    @property
    def top_value(self) -> int:
        """The largest discrete sub-pixel value: 255, or 1 for binarised images."""
        return 1 if self.bernoulli else LEVELS - 1

    def quantise(self, images: torch.Tensor) -> torch.Tensor:
        """Discrete sub-pixel values (long): 0..255, or 0/1 for binarised images."""
        # contract: images in [0, 1]
        if self.bernoulli:
            return (images >= 0.5).long()
        return (images * 255).round().clamp(0, 255).long()

    def to_image(self, values: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Discrete values → image intensities in [0, 1]."""
        return values.to(dtype) / self.top_value

    def nll_nats(self, logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood in nats of `values` (N, ...) under `logits` (N, K, ...)."""
        if self.bernoulli:
            return F.binary_cross_entropy_with_logits(logits[:, 0], values.to(logits.dtype), reduction="none")
        return F.cross_entropy(logits, values, reduction="none")

    def check_input(self, images: torch.Tensor, masks: torch.Tensor) -> None:
        """Reject images whose channel count differs from `in_channels`, and mismatched masks."""
        if images.ndim != 4 or images.shape[1] != self.channels:
            raise ValueError(
                f"images must be (B, {self.channels}, H, W) for in_channels={self.channels}, got {tuple(images.shape)}"
            )
        if masks.shape != (images.shape[0], 1, *images.shape[2:]):
            raise ValueError(
                f"masks must be (B, 1, H, W) matching images {tuple(images.shape)}, got {tuple(masks.shape)}"
            )

    # ----- likelihood --------------------------------------------------------------------------

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, C, K, H, W); not a completion (the hole values are read from `images`)."""
        self.check_input(images, masks)
        return self.logits(images, masks)

    def hole_nats(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image: the summed NLL in nats of the true hole sub-pixels (B,) and their count (B,)."""
        # Only the hole sub-pixels count: the known ones are given to the model, so predicting them teaches nothing.
        self.check_input(images, masks)
        hole = hole_flags(masks)
        where = hole[:, 0].nonzero(as_tuple=True)  # (b, i, j) of every hole pixel
        values = self.quantise(images).permute(0, 2, 3, 1)[where]  # (N, C)
        per_pixel = self.hole_nll(images, masks, where, values).sum(1)  # (N,)
        nats = per_pixel.new_zeros(len(images)).index_add(0, where[0], per_pixel)
        return nats, hole.flatten(1).sum(1).to(nats.dtype) * self.channels

    def losses(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean cross-entropy per hole sub-pixel: "loss" in nats, "nll_bpd" in bits (0, with a graph, for no hole)."""
        nats, dims = self.hole_nats(images, masks)
        loss = nats.sum() / dims.sum().clamp_min(1)
        return {"loss": loss, "nll_bpd": (loss / math.log(2)).detach()}

    @torch.no_grad()
    def validation_step(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
        """Hole likelihood only: sampling every validation image each epoch would dominate training."""
        nats, dims = self.hole_nats(images, masks)
        loss = (nats.sum() / dims.sum().clamp_min(1)).item()
        return {"loss": loss, "nll_bpd": loss / math.log(2)}

    @torch.no_grad()
    def test_metrics(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image NLL of the true hole pixels in bits per sub-pixel (NaN for an empty hole)."""
        return {"nll_bpd": bits_per_dim(*self.hole_nats(images, masks))}

    @torch.no_grad()
    def sampler_nll_bpd(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """`test_metrics`' per-image NLL (B,) through the fast path, teacher-forced: a check of `fill_raster`."""
        self.check_input(images, masks)
        nats = images.new_zeros(len(images))

        def score(logits: torch.Tensor, rows: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
            nats.index_add_(0, rows, self.nll_nats(logits, current))
            return current  # keep the true value: the later sub-pixels are teacher-forced

        self.fill_raster(images, masks, self.quantise(images), score)
        return bits_per_dim(nats, hole_flags(masks).flatten(1).sum(1).to(nats.dtype) * self.channels)

    # ----- sampling ----------------------------------------------------------------------------

    def draw(
        self,
        batch: int,
        greedy: bool | None = None,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Draw:
        """The draw for a batch; `greedy` and `temperature` default to the hyper-parameters."""
        temperature = self.temperature if temperature is None else temperature
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        return Draw(self.greedy if greedy is None else greedy, temperature, batch, self.bernoulli, generator)

    def _start(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Checked input → (hole map (B, C, H, W), discrete values with the holes zeroed so nothing of them leaks)."""
        self.check_input(images, masks)
        hole = hole_flags(masks).expand_as(images)
        return hole, self.quantise(images).masked_fill(hole, 0)

    def _composite(self, images: torch.Tensor, hole: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Known pixels exactly those of `images`, hole pixels the discrete `values` as intensities."""
        return torch.where(hole, self.to_image(values, images.dtype), images)

    @torch.no_grad()
    def sample(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        *,
        greedy: bool | None = None,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Composited completion: hole pixels drawn in raster order by the fast path, known pixels unchanged."""
        hole, values = self._start(images, masks)
        draw = self.draw(len(images), greedy, temperature, generator)
        values = self.fill_raster(images, masks, values, lambda logits, rows, _: draw(logits, rows))
        return self._composite(images, hole, values)

    @torch.no_grad()
    def naive_sample(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        *,
        greedy: bool | None = None,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
        max_positions: int | None = None,
    ) -> torch.Tensor:
        """Reference sampler: one full teacher-forced pass per hole position and channel (slow).

        With the same seed it gives `sample`'s completion. `max_positions` stops after that many
        positions (holed in any image, raster order), leaving the later holes at 0, so benchmarks can
        time a prefix and extrapolate.
        """
        hole, values = self._start(images, masks)
        draw = self.draw(len(images), greedy, temperature, generator)
        for i, j, rows in hole_positions(masks)[:max_positions]:
            for c in range(self.channels):
                logits = self.logits(self._composite(images, hole, values), masks)  # (B, C, K, H, W)
                values[rows, c, i, j] = draw(logits[rows, c, :, i, j], rows)
        return self._composite(images, hole, values)

    @torch.no_grad()
    def generate(
        self,
        n: int,
        height: int,
        width: int,
        *,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """`n` images (n, C, height, width) in [0, 1] drawn from a blank canvas in raster order (always sampled).

        The sampler with every pixel a hole: nothing is known, so each pixel is drawn from
        p(pixel | earlier pixels). Meant for unconditional models (`pixelcnn` with `conditional:
        false`); a conditional one draws given an all-hole mask, which it rarely saw in training.
        """
        if n < 1 or height < 1 or width < 1:
            raise ValueError(f"generate needs n, height and width of at least 1, got {n}, {height}, {width}")
        where = next(self.parameters(), torch.empty(0))  # the canvas goes where the model is, in its dtype
        canvas = where.new_zeros(n, self.channels, height, width)
        holes = where.new_ones(n, 1, height, width)
        return self.sample(canvas, holes, greedy=False, temperature=temperature, generator=generator)

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """One completion, greedy or sampled as the hyper-parameter `sampling` says."""
        return self.sample(images, masks)

    @torch.no_grad()
    def inpaint_samples(
        self, images: torch.Tensor, masks: torch.Tensor, n_samples: int, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """`n_samples` sampled completions (always sampled, even when `sampling` is greedy)."""
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")
        # One batched call: the copies share every pass of the fast path.
        out = self.sample(
            images.repeat(n_samples, 1, 1, 1), masks.repeat(n_samples, 1, 1, 1), greedy=False, generator=generator
        )  # (n*B, C, H, W)
        return list(out.chunk(n_samples))
