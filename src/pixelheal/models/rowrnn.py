"""Row-RNN inpainter (`rowrnn`): per-channel GRUs read each row left to right over embedded intensities.

Tokens: 0..255 are intensities, 256 is the start token (a start row on top and a start column on
the left of every image), 257 marks a hole in the conditioning input. The network is run on a grid
padded to (H+1, W+1): padded row 0 is the start row, and step k of image row i reads the previous
pixel (i, k-1) (the start token at k = 0) and predicts pixel (i, k); the extra last step k = W
reads the row's last pixel so that its summary reaches the row below.

Inputs of the GRU of channel c at step k of row i (all summed into one `embed_dim` vector):
  * the previous pixel (i, k-1), all channels (teacher-forced / sampled values: autoregressive);
  * the infill-marked known image at (i, k), all channels (257 on holes, so it leaks nothing);
  * the channels c' < c of the current pixel (i, k) (colour conditioning R → G → B);
  * a linear map of the previous row's hidden state after it read pixel (i-1, k), i.e. its step
    k+1 (so the pixel right above is seen and information flows down the image).

Sampling draws one `torch.rand` uniform per image and hole sub-pixel from torch's global RNG
(reproducible with `torch.manual_seed`); results also depend on the batch composition, because
every image of the batch draws at every position that is a hole in any of them. `naive_inpaint`
(one full forward pass per hole position) is the slow reference the fast `RowSampler` must match.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from pixelheal.models.base import InpaintingModel, composite

logger = logging.getLogger(__name__)

LEVELS = 256  # intensity tokens 0..255
START = 256  # start row / start column (and the pad step past the row's end)
INFILL = 257  # hole marker in the conditioning input
VOCAB = 258
MODES = ("sample", "greedy")


class RowRNNInpainter(InpaintingModel):
    """One multi-layer GRU per colour channel over rows, conditioned on the infill-marked image."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        embed_dim: int = 64,
        hidden: int = 32,
        n_layers: int = 3,
        sampling: str = "sample",
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("embed_dim", embed_dim), ("hidden", hidden), ("n_layers", n_layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if sampling not in MODES:
            raise ValueError(f"sampling: expected one of {list(MODES)}, got {sampling!r}")
        if not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        self.channels, self.sampling, self.temperature = in_channels, sampling, float(temperature)
        c = self.channels
        # Embedding tables, VOCAB rows each: previous pixel (c tables), conditioning (c), current pixel (c - 1).
        self.prev_table, self.cond_table, self.cur_table = 0, c, 2 * c
        self.embed = nn.Embedding((3 * c - 1) * VOCAB, embed_dim)
        self.grus = nn.ModuleList(nn.GRU(embed_dim, hidden, n_layers, batch_first=True) for _ in range(c))
        self.above = nn.ModuleList(nn.Linear(hidden, embed_dim) for _ in range(c))
        self.heads = nn.ModuleList(nn.Linear(hidden, LEVELS) for _ in range(c))

    # ----- tokens and embeddings -------------------------------------------------------------

    def _tokens(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Intensity tokens (B, C, H, W), hole flags (B, 1, H, W) and infill-marked conditioning tokens."""
        if images.dim() != 4 or images.shape[1] != self.channels:
            raise ValueError(f"images: expected (B, {self.channels}, H, W) for in_channels={self.channels}, got {tuple(images.shape)}")
        if masks.shape != (images.shape[0], 1, *images.shape[2:]):
            raise ValueError(f"masks: expected shape {(images.shape[0], 1, *images.shape[2:])}, got {tuple(masks.shape)}")
        values = (images * 255).round().clamp(0, 255).long()  # contract: images in [0, 1]
        holes = masks > 0.5  # contract: 1 = hole
        cond = values.masked_fill(holes, INFILL)  # (B, C, H, W)
        return values, holes, cond

    def _embed_sum(self, first: int, tokens: torch.Tensor) -> torch.Tensor:
        """Sum over channels n of table (first + n) applied to tokens (B, n, *S) → (B, *S, D)."""
        n = tokens.shape[1]
        offsets = (first + torch.arange(n, device=tokens.device)) * VOCAB
        return self.embed(tokens + offsets.view(1, n, *[1] * (tokens.dim() - 2))).sum(1)

    def _embed_onehot(self, first: int, onehot: torch.Tensor) -> torch.Tensor:
        """Differentiable twin of `_embed_sum` for one-hots (B, n, *S, VOCAB): one-hot @ embedding matrix."""
        weight = self.embed.weight.view(-1, VOCAB, self.embed.embedding_dim)[first : first + onehot.shape[1]]
        return torch.einsum("bn...v,nvd->b...d", onehot, weight)

    @staticmethod
    def _pad(inner: torch.Tensor, fill: torch.Tensor, left: bool) -> torch.Tensor:
        """(B, n, H, W, *R) → (B, n, H+1, W+1, *R): a start row on top, a fill column left or right."""
        b, n, h, w = inner.shape[:4]
        rest = inner.shape[4:]
        column = fill.expand(b, n, h, 1, *rest)
        inner = torch.cat([column, inner] if left else [inner, column], dim=3)
        return torch.cat([fill.expand(b, n, 1, w + 1, *rest), inner], dim=2)

    def _value_grid(self, first: int, values: torch.Tensor, onehot: torch.Tensor | None, left: bool) -> torch.Tensor:
        """Embedded image values (B, n, H, W) on the padded step grid (B, H+1, W+1, D), from tokens or one-hots."""
        start = torch.tensor(START, device=values.device)
        if onehot is None:
            return self._embed_sum(first, self._pad(values, start, left))
        padded = F.pad(onehot, (0, VOCAB - LEVELS))  # (B, n, H, W, VOCAB)
        return self._embed_onehot(first, self._pad(padded, F.one_hot(start, VOCAB).to(onehot.dtype), left))

    def _input_grids(self, values: torch.Tensor, cond: torch.Tensor, onehot: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Per channel, the summed token embeddings of every step of the padded grid (B, H+1, W+1, D)."""
        # Step k reads the previous pixel k-1 (start column on the left) and the conditioning and
        # colour inputs of pixel k itself (pad column on the right, for the extra step W).
        base = self._value_grid(self.prev_table, values, onehot, left=True)
        base = base + self._value_grid(self.cond_table, cond, None, left=False)
        return [base] + [
            base + self._value_grid(self.cur_table, values[:, :c], None if onehot is None else onehot[:, :c], left=False)
            for c in range(1, self.channels)
        ]

    def _row_tokens(self, values: torch.Tensor, cond: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Previous-pixel, conditioning and current-pixel tokens (B, C, W+1) of every step of row i (-1 = start row)."""
        b, c, _, w = values.shape
        start = values.new_full((b, c, 1), START)
        if i < 0:
            row = values.new_full((b, c, w + 1), START)
            return row, row, row
        return (torch.cat([start, values[:, :, i]], -1), torch.cat([cond[:, :, i], start], -1),
                torch.cat([values[:, :, i], start], -1))

    # ----- the recurrence --------------------------------------------------------------------

    @staticmethod
    def _shift(above: torch.Tensor) -> torch.Tensor:
        """Row states (B, W+1, hidden) aligned to steps: step k gets the state after reading pixel k."""
        return torch.cat([above[:, 1:], above[:, -1:]], dim=1)  # the pad step W reuses the row summary

    def _channel_states(self, c: int, grid: torch.Tensor) -> torch.Tensor:
        """Teacher-forced top-layer GRU outputs (B, H, W+1, hidden) of channel c for every image row."""
        b, _, steps, _ = grid.shape
        above = grid.new_zeros(b, steps, self.grus[c].hidden_size)  # nothing above the start row
        outputs = []
        # unbind, not grid[:, r]: each slice's backward would otherwise zero-fill a whole grid-sized gradient
        for r, row in enumerate(grid.unbind(1)):  # r = 0 is the start row
            above, _ = self.grus[c](row + self.above[c](self._shift(above)))  # (B, W+1, hidden) from a zero state
            if r:
                outputs.append(above)
        return torch.stack(outputs, dim=1)

    def _pixel_states(self, images: torch.Tensor, masks: torch.Tensor, onehot: torch.Tensor | None = None):
        """Per channel the teacher-forced states (B, H, W, hidden) that predict each pixel; tokens; holes."""
        values, holes, cond = self._tokens(images, masks)
        grids = self._input_grids(values, cond, onehot)
        w = values.shape[-1]
        return [self._channel_states(c, grids[c])[:, :, :w] for c in range(self.channels)], values, holes

    def logits(self, images: torch.Tensor, masks: torch.Tensor, onehot: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, C, 256, H, W); `onehot` (B, C, H, W, 256) replaces the image values."""
        states, _, _ = self._pixel_states(images, masks, onehot)
        per_channel = [head(state) for head, state in zip(self.heads, states)]  # (B, H, W, 256) each
        return torch.stack(per_channel, dim=1).permute(0, 1, 4, 2, 3)

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Teacher-forced one-step-ahead predictive mean in [0, 1], shape (B, C, H, W)."""
        probs = self.logits(images, masks).softmax(dim=2)  # (B, C, 256, H, W)
        levels = torch.arange(LEVELS, device=probs.device, dtype=probs.dtype) / 255
        return torch.einsum("bcvhw,v->bchw", probs, levels)

    # ----- training and scoring --------------------------------------------------------------

    def _hole_nll(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image summed NLL in nats over hole sub-pixels (B,) and their counts (B,)."""
        states, values, holes = self._pixel_states(images, masks)
        where = holes[:, 0].nonzero(as_tuple=True)  # (b, i, k) of every hole pixel
        # The heads only run on hole pixels: the known ones carry no loss.
        nll = sum(F.cross_entropy(head(state[where]), values[:, c][where], reduction="none")
                  for c, (head, state) in enumerate(zip(self.heads, states)))  # (N,) summed over channels
        per_image = states[0].new_zeros(len(values)).index_add(0, where[0], nll)
        return per_image, holes.flatten(1).sum(1).to(per_image.dtype) * self.channels

    def losses(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean cross-entropy over the hole sub-pixels of the batch (0 with a graph when there are none)."""
        nll, count = self._hole_nll(images, masks)
        return {"loss": nll.sum() / count.sum().clamp_min(1)}

    @torch.no_grad()
    def validation_step(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
        """Hole cross-entropy (nats) and the same in bits/dim; no sampling, so validation stays cheap."""
        loss = self.losses(images, masks)["loss"].item()
        return {"loss": loss, "nll_bpd": loss / math.log(2)}

    @torch.no_grad()
    def test_metrics(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Teacher-forced NLL of the true hole pixels in bits/dim per image (NaN for an empty hole)."""
        nll, count = self._hole_nll(images, masks)
        return {"nll_bpd": nll / (count * math.log(2))}  # 0/0 = NaN for an empty hole

    # ----- inpainting ------------------------------------------------------------------------

    def _choose(self, logits: torch.Tensor, mode: str) -> torch.Tensor:
        """A token per image (B,) from logits (B, 256)."""
        if mode == "greedy":
            return logits.argmax(-1)
        # Inverse-CDF draw: one uniform per image, several times faster than torch.multinomial on CPU.
        cdf = F.softmax(logits / self.temperature, dim=-1).cumsum(-1)  # (B, 256)
        u = torch.rand(len(logits), 1, device=logits.device, dtype=cdf.dtype)
        return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_max(LEVELS - 1)  # rounding may leave cdf[-1] < u

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Composited completion in [0, 1] in the `sampling` mode; known pixels are returned unchanged."""
        return self.complete(images, masks, self.sampling)

    @torch.no_grad()
    def inpaint_samples(self, images: torch.Tensor, masks: torch.Tensor, n_samples: int) -> list[torch.Tensor]:
        """`n_samples` sampled completions (always sampling, whatever `sampling` says), drawn as one batch."""
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")
        out = self.complete(images.repeat(n_samples, 1, 1, 1), masks.repeat(n_samples, 1, 1, 1), "sample")
        return list(out.chunk(n_samples))

    @torch.no_grad()
    def complete(self, images: torch.Tensor, masks: torch.Tensor, mode: str) -> torch.Tensor:
        """Composited completion with the incremental sampler in an explicit mode ("sample" or "greedy")."""
        _check_mode(mode)
        values, holes, cond = self._tokens(images, masks)
        values, _ = RowSampler(self, values, holes, cond, mode).run()
        return composite(images, holes.to(images.dtype), values.to(images.dtype) / 255)

    @torch.no_grad()
    def naive_inpaint(self, images: torch.Tensor, masks: torch.Tensor, mode: str | None = None,
                      max_positions: int | None = None) -> torch.Tensor:
        """Reference sampler: a full teacher-forced forward pass per hole position and channel (slow).

        `max_positions` stops after that many positions (holed in any image, raster order), leaving
        later holes at their input values, so benchmarks can time a prefix and extrapolate.
        """
        mode = _check_mode(mode or self.sampling)
        values, holes, cond = self._tokens(images, masks)
        values = values.clone()
        positions = holes.any(0)[0].nonzero().tolist()  # raster order over positions holed anywhere
        for i, k in positions[:max_positions]:
            for c in range(self.channels):
                grid = self._input_grids(values, cond)[c]
                states = self._channel_states(c, grid)  # (B, H, W+1, hidden)
                choice = self._choose(self.heads[c](states[:, i, k]), mode)
                values[:, c, i, k] = torch.where(holes[:, 0, i, k], choice, values[:, c, i, k])
        return composite(images, holes.to(images.dtype), values.to(images.dtype) / 255)

    @torch.no_grad()
    def sampler_nll_bpd(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """NLL (bits/dim, (B,)) of the true hole pixels through the incremental sampler (checks `test_metrics`)."""
        values, holes, cond = self._tokens(images, masks)
        _, nll = RowSampler(self, values, holes, cond, "score").run()
        return nll / (holes.flatten(1).sum(1) * self.channels * math.log(2))


class RowSampler:
    """Fills the hole pixels in raster order, carrying GRU states instead of re-running the image.

    Rows without a hole in any image, and the parts of a hole row before its first / after its last
    hole column, run teacher-forced as one GRU call per channel; only the hole span steps pixel by
    pixel. Mode "score" keeps the true values and accumulates their NLL instead of sampling.
    """

    def __init__(self, model: RowRNNInpainter, values: torch.Tensor, holes: torch.Tensor, cond: torch.Tensor, mode: str) -> None:
        self.model, self.values, self.holes, self.cond, self.mode = model, values.clone(), holes, cond, mode
        self.nll = values.new_zeros(values.shape[0], dtype=model.embed.weight.dtype)

    def run(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Completed tokens (B, C, H, W) and, in "score" mode, the hole NLL in nats per image (B,)."""
        b, _, h, w = self.values.shape
        hidden = self.model.grus[0].hidden_size
        above = [self.values.new_zeros(b, w + 1, hidden, dtype=self.nll.dtype)] * self.model.channels
        hole_rows = self.holes[:, 0].any(0).any(1).nonzero().flatten().tolist()
        if not hole_rows:
            return self.values, self.nll
        logger.debug("row sampler (%s): %d hole rows of %d, batch %d", self.mode, len(hole_rows), h, b)
        above = self._row(-1, above, [])
        for i in range(hole_rows[-1] + 1):  # rows below the last hole row cannot change anything
            above = self._row(i, above, self.holes[:, 0, i].any(0).nonzero().flatten().tolist())
        return self.values, self.nll

    def _steps(self, c: int, i: int, k0: int, k1: int, above: torch.Tensor,
               state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """GRU outputs (B, k1-k0, hidden) and state of channel c over steps k0..k1-1 of row i."""
        model = self.model
        prev, cond, cur = (t[..., k0:k1] for t in model._row_tokens(self.values, self.cond, i))
        x = model._embed_sum(model.prev_table, prev) + model._embed_sum(model.cond_table, cond)
        if c:
            x = x + model._embed_sum(model.cur_table, cur[:, :c])
        x = x + model.above[c](model._shift(above)[:, k0:k1])  # (B, k1-k0, D)
        return model.grus[c](x, state)

    def _row(self, i: int, above: list[torch.Tensor], hole_cols: list[int]) -> list[torch.Tensor]:
        """Run row i (-1 = start row), filling its holes; returns each channel's row states (B, W+1, hidden)."""
        steps = self.values.shape[-1] + 1
        if not hole_cols:  # nothing to sample: one teacher-forced call per channel
            return [self._steps(c, i, 0, steps, above[c], None)[0] for c in range(self.model.channels)]
        channels = range(self.model.channels)
        first, last, holed = hole_cols[0], hole_cols[-1], set(hole_cols)
        outputs: list[list[torch.Tensor]] = [[] for _ in channels]
        states: list[torch.Tensor | None] = [None for _ in channels]
        if first:  # the known stretch before the first hole column: one call per channel
            for c in channels:
                out, states[c] = self._steps(c, i, 0, first, above[c], None)
                outputs[c].append(out)
        for k in range(first, last + 1):
            for c in channels:  # R, then G seeing R, then B seeing R and G
                out, states[c] = self._steps(c, i, k, k + 1, above[c], states[c])
                outputs[c].append(out)
                if k in holed:  # no draw at a column without holes: the RNG use matches the naive path
                    self._fill(c, i, k, self.model.heads[c](out[:, 0]))
        if last + 1 < steps:  # the rest of the row (and its pad step) is fixed now: one call per channel
            for c in channels:
                outputs[c].append(self._steps(c, i, last + 1, steps, above[c], states[c])[0])
        return [torch.cat(parts, dim=1) for parts in outputs]

    def _fill(self, c: int, i: int, k: int, logits: torch.Tensor) -> None:
        """Set sub-pixel (c, i, k) of every image with a hole there (or score its true value)."""
        hole = self.holes[:, 0, i, k]
        if self.mode == "score":
            logp = F.log_softmax(logits, dim=-1).gather(1, self.values[:, c, i, k, None])[:, 0]
            self.nll -= torch.where(hole, logp, torch.zeros_like(logp))
            return
        choice = self.model._choose(logits, self.mode)
        self.values[:, c, i, k] = torch.where(hole, choice, self.values[:, c, i, k])


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"sampling: expected one of {list(MODES)}, got {mode!r}")
    return mode


def rowrnn(**kwargs) -> RowRNNInpainter:
    """Row-RNN inpainter; keyword-only hyper-parameters (see `RowRNNInpainter`)."""
    return RowRNNInpainter(**kwargs)
