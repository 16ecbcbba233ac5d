"""Row-RNN inpainter (`rowrnn`): per-channel GRUs read each row left to right over embedded intensities.

Tokens: 0..255 are intensities, 256 is the start token (a start row on top and a start column on
the left of every image), 257 marks a hole in the conditioning input. The network is run on a grid
padded to (H+1, W+1): padded row 0 is the start row, and step k of image row i reads the previous
pixel (i, k-1) (the start token at k = 0) and predicts pixel (i, k); the extra last step k = W
reads the row's last pixel so that its summary reaches the row below.

Inputs of the GRU of channel c at step k of row i (all summed into one `embed_dim` vector), with
`colour_conditioning: input` (the default):
  * the previous pixel (i, k-1), all channels (teacher-forced / sampled values: autoregressive);
  * the infill-marked known image at (i, k), all channels (257 on holes, so it leaks nothing);
  * the channels c' < c of the current pixel (i, k) (colour conditioning R → G → B);
  * a linear map of the previous row's hidden state after it read pixel (i-1, k), i.e. its step
    k+1 (so the pixel right above is seen and information flows down the image).

`colour_conditioning: head` is the original: the GRUs are channel-independent (channel c's GRU reads
channel c only, of the previous pixel and of the infill-marked image, plus its row above), and the
colour conditioning happens at the head: channel c's head reads its GRU state concatenated with the
embedded values of channels c' < c at the same pixel (green sees red, blue sees red and green; the
true values when teacher-forced, the drawn ones when sampling). Both modes share the embedding tables.

`cond_fill: smooth | biharmonic` puts the interpolated fill the U-Nets use (it reads only the known
pixels) into the holes of the conditioning input instead of INFILL: a hole's conditioning token is the
quantised fill, stored as token + HOLE so that a learnt hole embedding is added there (the model still
knows which pixels are holes). `output: logistic_mixture` replaces each 256-way head by the parameters
of a discretised logistic mixture (see `logistic_mixture`) whose means read the pixel's earlier channels;
with a `cond_fill` too, the means are offsets from the fill at their pixel (as pixelcnn's).

Likelihood, sampling and the naive reference sampler come from `AutoregressiveInpainter`; the fast
path is `RowSampler`, which carries GRU states through the incremental interface `run_steps` /
`channel_logits` instead of re-running the image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pixelheal.config import require
from pixelheal.models.autoregressive import LEVELS, AutoregressiveInpainter, Chooser, Sampling, hole_flags
from pixelheal.models.fills import HoleFill, fill_holes
from pixelheal.models.logistic_mixture import LogisticMixture, to_unit

logger = logging.getLogger(__name__)

START = 256  # start row / start column (and the pad step past the row's end)
INFILL = 257  # hole marker in the conditioning input
VOCAB = 258
HOLE = VOCAB  # added to a hole's fill token in the conditioning input (`cond_fill` other than zero)

ColourConditioning = Literal["input", "head"]


@dataclass(frozen=True)
class RowRNNConfig:
    """Hyper-parameters of `rowrnn`."""

    in_channels: int = 3
    embed_dim: int = 64
    hidden: int = 32
    n_layers: int = 3  # GRU layers per colour channel
    sampling: Sampling = "sample"
    temperature: float = 1.0
    # input: every GRU reads all channels, earlier channels of the pixel embedded into its input;
    # head: the original, channel-independent GRUs, earlier channels concatenated at the head
    colour_conditioning: ColourConditioning = "input"
    output: Literal["softmax", "logistic_mixture"] = "softmax"  # 256-way per sub-pixel | PixelCNN++ mixture
    mixtures: int = 5  # logistics per sub-pixel of `logistic_mixture`
    cond_fill: HoleFill = "zero"  # zero: holes marked INFILL; smooth / biharmonic: the fill's token + a hole embedding

    def __post_init__(self) -> None:
        for key in ("in_channels", "embed_dim", "hidden", "n_layers", "mixtures"):
            require(getattr(self, key) >= 1, key, f"must be at least 1, got {getattr(self, key)}")
        require(self.temperature > 0, "temperature", f"must be positive, got {self.temperature}")


def _part(onehot: torch.Tensor | None, c: int) -> torch.Tensor | None:
    """Channel c of one-hots (B, C, ...) as (B, 1, ...); None stays None."""
    return None if onehot is None else onehot[:, c : c + 1]


GRUWeights = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # one layer's w_ih, w_hh, b_ih, b_hh


def stacked_gru_weights(grus: nn.ModuleList) -> list[GRUWeights]:
    """Per layer, the weights of `grus` stacked for `row_recurrence`: (G, in, 3 hidden), (G, hidden, 3 hidden), biases."""

    def stacked(name: str) -> torch.Tensor:
        return torch.stack([getattr(gru, name) for gru in grus])

    return [
        (
            stacked(f"weight_ih_l{layer}").transpose(1, 2),
            stacked(f"weight_hh_l{layer}").transpose(1, 2),
            stacked(f"bias_ih_l{layer}")[:, None],
            stacked(f"bias_hh_l{layer}")[:, None],
        )
        for layer in range(grus[0].num_layers)
    ]


def _gru_step(gate_inputs: torch.Tensor, state: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
    """One GRU step of G GRUs at once (`nn.GRU`'s gates r, z, n): new state (G, N, hidden) from the input's
    gate projections (G, N, 3 hidden) and the state (G, N, hidden)."""
    hidden = state.shape[-1]
    # split, not slices: a slice's backward zero-fills a gradient of its whole input
    gates, new_gate = gate_inputs.split([2 * hidden, hidden], -1)
    recurrent, new_recurrent = torch.baddbmm(b_hh, state, w_hh).split([2 * hidden, hidden], -1)
    reset, update = torch.sigmoid(gates + recurrent).chunk(2, -1)
    new = torch.tanh(new_gate + reset * new_recurrent)
    return new + update * (state - new)


def row_recurrence(
    x: torch.Tensor, layers: list[GRUWeights], above_weight: torch.Tensor, above_bias: torch.Tensor
) -> torch.Tensor:
    """Teacher-forced top-layer outputs (G, B, R-1, S, hidden) of G row recurrences over grids x (G, B, R, S, D).

    Row r of grid g runs GRU g (`stacked_gru_weights`) from zero states over its S steps; step k's input is
    x[g, :, r, k] plus `above` (above_weight (G, hidden, D), above_bias (G, 1, D)) of row r-1's top-layer output
    after its step min(k+1, S-1) (zeros above row 0, which is not returned).

    Cell (layer l, row r, step k) depends on (l, r, k-1), (l-1, r, k) and (top, r-1, k+1) only, so it runs at tick
    (L+1) r + k + l: a wavefront of about (L+1) R + S ticks, each tick one batched step per layer over all of the
    layer's active cells, instead of R L S sequential steps: about 4x fewer ops, and matmuls large enough to gain
    from bf16 (on 2 CPU cores the fp32 step is bound by the gate arithmetic, not by the op count).
    """
    g, b, rows, steps, _ = x.shape
    n_layers, hidden = len(layers), layers[0][1].shape[1]
    lag = n_layers + 1  # row r starts `lag` ticks after row r-1: its step k reads row r-1's top layer at step k+1
    ticks = lag * (rows - 1) + steps + n_layers - 1

    def span(tick: int, layer: int) -> range:
        """Rows active in `layer` at `tick` (its step is tick - layer - lag * row), in ascending order."""
        s = tick - layer
        return range(max(0, -((steps - 1 - s) // lag)), min(rows - 1, s // lag) + 1) if s >= 0 else range(0)

    # Layer 0's input projections of every cell (the row above's part comes later), in tick order.
    order = [r * steps + t - lag * r for t in range(ticks) for r in span(t, 0)]
    counts = [len(span(t, 0)) for t in range(ticks)]
    index = torch.tensor(order, device=x.device)
    w_ih0, _, b_ih0, _ = layers[0]
    cells = x.permute(0, 2, 3, 1, 4).flatten(1, 2).index_select(1, index)  # (G, R S, B, D)
    bias0 = torch.baddbmm(b_ih0, above_bias, w_ih0)  # above's bias goes through w_ih like x
    projected = torch.baddbmm(bias0, cells.flatten(1, 2), w_ih0).view(g, rows * steps, b, 3 * hidden)
    inputs0 = projected.split(counts, dim=1)
    above_gates = torch.bmm(above_weight, w_ih0)  # (G, hidden, 3 hidden): row above's state → layer 0's gates

    zero = x.new_zeros(g, 1, b, hidden)
    states: list[torch.Tensor | None] = [None] * n_layers  # per layer, its output (G, n, B, hidden) at the last tick
    tops: list[torch.Tensor] = []  # the top layer's outputs, per tick

    def carried(layer: int, tick: int) -> torch.Tensor:
        """The state of `layer`'s rows active at `tick`: their output at tick-1, zeros for a row starting now."""
        now, before, previous = span(tick, layer), span(tick - 1, layer), states[layer]
        kept = range(max(now.start, before.start), min(now.stop, before.stop))
        parts = [previous[:, kept.start - before.start : kept.stop - before.start]] if len(kept) else []
        return torch.cat(parts + [zero] * (len(now) - len(kept)), dim=1)  # at most one row starts per tick

    def from_above(tick: int) -> torch.Tensor:
        """Row r-1's top-layer outputs read by layer 0's active rows r at `tick` (zeros above row 0)."""
        rows, top = span(tick, 0), n_layers - 1
        parts, first = [], rows.start
        if first == 0:
            parts, first = [zero], 1
        if first < rows.stop and tick - lag * first == steps - 1:  # the last step reads the row above's, 2 ticks ago
            j = first - 1 - span(tick - 2, top).start
            parts, first = [*parts, tops[tick - 2][:, j : j + 1]], first + 1
        if first < rows.stop:  # the others read the row above's next step, computed at the previous tick
            j = first - 1 - span(tick - 1, top).start
            parts.append(tops[tick - 1][:, j : j + rows.stop - first])
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    for t in range(ticks):
        # Top layer first: each layer reads the one below it as it was at the previous tick.
        for layer in reversed(range(n_layers)):
            active = len(span(t, layer))
            if not active:
                states[layer] = None
                if layer == n_layers - 1:
                    tops.append(zero[:, :0])
                continue
            w_ih, w_hh, b_ih, b_hh = layers[layer]
            if layer:
                gate_inputs = torch.baddbmm(b_ih, states[layer - 1].flatten(1, 2), w_ih)
            else:
                gate_inputs = torch.baddbmm(inputs0[t].flatten(1, 2), from_above(t).flatten(1, 2), above_gates)
            state = _gru_step(gate_inputs, carried(layer, t).flatten(1, 2), w_hh, b_hh)
            states[layer] = state.view(g, active, b, hidden)
            if layer == n_layers - 1:
                tops.append(states[layer])

    # Back from tick order to (row, step) order: the top layer's cells come in layer 0's order, n_layers - 1 ticks later.
    position = torch.empty_like(index)
    position[index] = torch.arange(len(order), device=x.device)
    out = torch.cat(tops, dim=1).index_select(1, position[steps:])  # row 0 is not returned
    return out.view(g, rows - 1, steps, b, hidden).permute(0, 3, 1, 2, 4)


class RowRNNInpainter(AutoregressiveInpainter):
    """One multi-layer GRU per colour channel over rows, conditioned on the infill-marked image."""

    def __init__(self, config: RowRNNConfig) -> None:
        super().__init__(config.in_channels, sampling=config.sampling, temperature=config.temperature)
        self.config = config
        self.at_head = config.colour_conditioning == "head"
        c, embed_dim, hidden = config.in_channels, config.embed_dim, config.hidden
        # Embedding tables, VOCAB rows each: previous pixel (c tables), conditioning (c), current pixel (c - 1).
        self.prev_table, self.cond_table, self.cur_table = 0, c, 2 * c
        self.embed = nn.Embedding((3 * c - 1) * VOCAB, embed_dim)
        self.grus = nn.ModuleList(nn.GRU(embed_dim, hidden, config.n_layers, batch_first=True) for _ in range(c))
        self.above = nn.ModuleList(nn.Linear(hidden, embed_dim) for _ in range(c))
        colours = [k * embed_dim if self.at_head else 0 for k in range(c)]  # head c also reads channels < c
        mixture = config.output == "logistic_mixture"
        self.mixture = LogisticMixture(c, config.mixtures) if mixture else None
        outputs = [LEVELS] * c if self.mixture is None else self.mixture.widths
        self.heads = nn.ModuleList(nn.Linear(hidden + extra, out) for extra, out in zip(colours, outputs))
        # Created last, and only with a fill: the seeded initial weights of the other options stay as they were.
        self.hole = None if config.cond_fill == "zero" else nn.Parameter(torch.randn(embed_dim))
        if self.mixture is not None and self.hole is not None:  # means start at the fill, scales as pixelcnn's
            starts = [0, *torch.tensor(self.mixture.widths).cumsum(0).tolist()]
            for head, start, end in zip(self.heads, starts, starts[1:]):
                self.mixture.start_at_prior(head.weight, head.bias, torch.arange(start, end))

    # ----- tokens and embeddings -------------------------------------------------------------

    def filled(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor | None:
        """The images with `cond_fill` in the hole (it reads the known pixels only); None with `cond_fill: zero`."""
        return None if self.hole is None else fill_holes(images, masks, self.config.cond_fill)

    def condition_tokens(
        self, images: torch.Tensor, masks: torch.Tensor, filled: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Conditioning tokens (B, C, H, W): the known intensities; INFILL on the holes, or HOLE + the fill's token.

        `filled`: `self.filled(images, masks)`, when the caller has it already.
        """
        hole = hole_flags(masks).expand_as(images)
        if self.hole is None:
            return self.quantise(images).masked_fill(hole, INFILL)
        tokens = self.quantise(self.filled(images, masks) if filled is None else filled)  # known pixels unchanged
        return torch.where(hole, tokens + HOLE, tokens)

    def mean_prior(self, filled: torch.Tensor | None) -> torch.Tensor | None:
        """Where the mixture's means start (B, H, W, C) in [-1, 1]: the fill (`filled`); None without a mixture or a fill."""
        if self.mixture is None or filled is None:
            return None
        return (filled * 2 - 1).permute(0, 2, 3, 1)

    def _embed_cond(self, first: int, tokens: torch.Tensor) -> torch.Tensor:
        """`_embed_sum` of conditioning tokens (B, n, *S) → (B, *S, D), plus the hole embedding on HOLE-marked ones."""
        if self.hole is None:
            return self._embed_sum(first, tokens)
        hole = tokens[:, 0] >= HOLE  # (B, *S): a hole has every channel marked
        return self._embed_sum(first, tokens % HOLE) + hole[..., None] * self.hole

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

    def _cond_grid(self, first: int, cond: torch.Tensor) -> torch.Tensor:
        """Embedded conditioning tokens (B, n, H, W) of pixel k at step k of the padded grid (B, H+1, W+1, D)."""
        return self._embed_cond(first, self._pad(cond, torch.tensor(START, device=cond.device), left=False))

    def _input_grids(
        self, values: torch.Tensor, cond: torch.Tensor, onehot: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Per channel, the summed token embeddings of every step of the padded grid (B, H+1, W+1, D)."""
        # Step k reads the previous pixel k-1 (start column on the left) and the conditioning and
        # colour inputs of pixel k itself (pad column on the right, for the extra step W).
        if self.at_head:  # channel-independent: channel c's own values only, from its own tables
            return [
                self._value_grid(self.prev_table + c, values[:, c : c + 1], _part(onehot, c), left=True)
                + self._cond_grid(self.cond_table + c, cond[:, c : c + 1])
                for c in range(self.channels)
            ]
        base = self._value_grid(self.prev_table, values, onehot, left=True)
        base = base + self._cond_grid(self.cond_table, cond)
        return [base] + [
            base
            + self._value_grid(self.cur_table, values[:, :c], None if onehot is None else onehot[:, :c], left=False)
            for c in range(1, self.channels)
        ]

    def _row_tokens(
        self, values: torch.Tensor, cond: torch.Tensor, i: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Previous-pixel, conditioning and current-pixel tokens (B, C, W+1) of every step of row i (-1 = start row)."""
        b, c, _, w = values.shape
        start = values.new_full((b, c, 1), START)
        if i < 0:
            row = values.new_full((b, c, w + 1), START)
            return row, row, row
        return (
            torch.cat([start, values[:, :, i]], -1),
            torch.cat([cond[:, :, i], start], -1),
            torch.cat([values[:, :, i], start], -1),
        )

    # ----- the recurrence, teacher-forced ------------------------------------------------------

    def _row_states(self, grids: list[torch.Tensor]) -> torch.Tensor:
        """Teacher-forced top-layer GRU outputs (C, B, H, W+1, hidden) of every channel for every image row."""
        weight = torch.stack([linear.weight for linear in self.above]).transpose(1, 2)  # (C, hidden, D)
        bias = torch.stack([linear.bias for linear in self.above])[:, None]
        return row_recurrence(torch.stack(grids), stacked_gru_weights(self.grus), weight, bias)

    def _pixel_states(
        self, images: torch.Tensor, masks: torch.Tensor, filled: torch.Tensor | None, onehot: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher-forced states (C, B, H, W, hidden) that predict each pixel's channels (`filled`: `self.filled`)."""
        values = self.quantise(images)
        grids = self._input_grids(values, self.condition_tokens(images, masks, filled), onehot)
        w = values.shape[-1]
        return self._row_states(grids)[..., :w, :]

    def _colours(self, pixels: torch.Tensor, onehot: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Head mode: embeddings (..., D) of channels 0..C-2 of `pixels` (..., C), or of their one-hots (..., C, 256).

        Input mode: none (the earlier channels entered the GRU input instead).
        """
        if not self.at_head:
            return []
        if onehot is None:
            return [self.embed(pixels[..., k] + (self.cur_table + k) * VOCAB) for k in range(self.channels - 1)]
        weight = self.embed.weight.view(-1, VOCAB, self.embed.embedding_dim)[:, :LEVELS]
        return [onehot[..., k, :] @ weight[self.cur_table + k] for k in range(self.channels - 1)]

    def _unit(self, pixels: torch.Tensor, onehot: torch.Tensor | None = None) -> torch.Tensor:
        """`pixels` (..., C), or their one-hots (..., C, 256), as values (..., C) in [-1, 1]: a mixture's colour inputs."""
        if onehot is None:
            return to_unit(pixels, self.embed.weight.dtype)
        return onehot @ to_unit(torch.arange(LEVELS, device=onehot.device), onehot.dtype)

    def _head(self, c: int, state: torch.Tensor, colours: list[torch.Tensor]) -> torch.Tensor:
        """Head output (..., 256 or mixture block) of channel c from its state (..., hidden) and, in head mode, colours."""
        return self.heads[c](torch.cat([state, *colours[:c]], dim=-1) if colours and c else state)

    def _logits(self, c: int, out: torch.Tensor, unit: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        """Logits (..., 256) of channel c from its head output, the pixel's values (..., C) in [-1, 1] so far and
        the mixture means' starting point `prior` (..., C) (`mean_prior`, or None)."""
        if self.mixture is None:
            return out
        return self.mixture.channel_table(out, unit[..., :c], None if prior is None else prior[..., : c + 1])

    def logits(self, images: torch.Tensor, masks: torch.Tensor, onehot: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, C, 256, H, W); `onehot` (B, C, H, W, 256) replaces the image values."""
        filled = self.filled(images, masks)
        states = self._pixel_states(images, masks, filled, onehot)
        pixels = self.quantise(images).permute(0, 2, 3, 1)  # (B, H, W, C)
        pixel_onehots = None if onehot is None else onehot.permute(0, 2, 3, 1, 4)  # (B, H, W, C, 256)
        colours, unit = self._colours(pixels, pixel_onehots), self._unit(pixels, pixel_onehots)
        prior = self.mean_prior(filled)
        per_channel = [self._logits(c, self._head(c, state, colours), unit, prior) for c, state in enumerate(states)]
        return torch.stack(per_channel, dim=1).permute(0, 1, 4, 2, 3)  # from (B, C, H, W, 256)

    def _hole_heads(
        self, images: torch.Tensor, masks: torch.Tensor, where: tuple[torch.Tensor, ...]
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor | None]:
        """Teacher-forced head outputs (N, ...) per channel at the hole pixels `where`, their pixels (N, C) and
        the mixture means' starting point there (N, C) (or None)."""
        filled = self.filled(images, masks)
        states = self._pixel_states(images, masks, filled)
        pixels = self.quantise(images).permute(0, 2, 3, 1)[where]  # (N, C)
        colours = self._colours(pixels)
        prior = self.mean_prior(filled)
        heads = [self._head(c, state[where], colours) for c, state in enumerate(states)]
        return heads, pixels, None if prior is None else prior[where]

    def hole_logits(self, images: torch.Tensor, masks: torch.Tensor, where: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Teacher-forced logits (N, 256, C) of the hole pixels only: the heads skip the known ones."""
        outs, pixels, prior = self._hole_heads(images, masks, where)
        unit = self._unit(pixels)
        return torch.stack([self._logits(c, out, unit, prior) for c, out in enumerate(outs)], dim=2)

    def hole_nll(
        self, images: torch.Tensor, masks: torch.Tensor, where: tuple[torch.Tensor, ...], values: torch.Tensor
    ) -> torch.Tensor:
        """NLL in nats (N, C) of the hole pixels' true `values`: a mixture's at those values alone, not all 256."""
        if self.mixture is None:
            return super().hole_nll(images, masks, where, values)
        outs, pixels, prior = self._hole_heads(images, masks, where)
        return -self.mixture.log_prob(torch.cat(outs, dim=-1), self._unit(pixels), values, prior)

    def losses(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean cross-entropy over the hole sub-pixels in nats (0 with a graph when there are none)."""
        # "loss" only: the Row-RNN's training history has never had a bits/dim term.
        return {"loss": super().losses(images, masks)["loss"]}

    # ----- the recurrence, incremental (the fast sampler's interface) --------------------------

    def initial_rows(self, values: torch.Tensor) -> list[torch.Tensor]:
        """Per channel the row states (B, W+1, hidden) above the start row: zeros."""
        b, _, _, w = values.shape
        return [values.new_zeros(b, w + 1, self.config.hidden, dtype=self.embed.weight.dtype)] * self.channels

    @staticmethod
    def _shift(above: torch.Tensor) -> torch.Tensor:
        """Row states (..., W+1, hidden) aligned to steps: step k gets the state after reading pixel k."""
        return torch.cat([above[..., 1:, :], above[..., -1:, :]], dim=-2)  # the pad step W reuses the row summary

    def run_steps(
        self,
        c: int,
        values: torch.Tensor,
        cond: torch.Tensor,
        i: int,
        k0: int,
        k1: int,
        above: torch.Tensor,
        state: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Channel c's GRU over steps k0..k1-1 of row i (-1 = start row): outputs (B, k1-k0, hidden) and state.

        `values` (B, C, H, W) are the tokens so far, `cond` the conditioning tokens, `above` the
        channel's row states (B, W+1, hidden) of row i-1 and `state` its GRU state after step k0-1
        (None at k0 = 0).
        """
        prev, known, cur = (t[..., k0:k1] for t in self._row_tokens(values, cond, i))
        if self.at_head:  # channel-independent: its own channel only
            own = slice(c, c + 1)
            own_known = self._embed_cond(self.cond_table + c, known[:, own])
            x = self._embed_sum(self.prev_table + c, prev[:, own]) + own_known
        else:
            x = self._embed_sum(self.prev_table, prev) + self._embed_cond(self.cond_table, known)
            if c:
                x = x + self._embed_sum(self.cur_table, cur[:, :c])
        x = x + self.above[c](self._shift(above)[:, k0:k1])  # (B, k1-k0, D)
        return self.grus[c](x, state)

    def channel_logits(
        self, c: int, outputs: torch.Tensor, pixels: torch.Tensor, prior: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits (..., 256) of channel c from its GRU outputs (..., hidden), the pixels' tokens so far (..., C)
        and the mixture means' starting point at those pixels (..., C) (`mean_prior`, or None)."""
        return self._logits(c, self._head(c, outputs, self._colours(pixels)), self._unit(pixels), prior)

    def fill_raster(
        self, images: torch.Tensor, masks: torch.Tensor, values: torch.Tensor, choose: Chooser
    ) -> torch.Tensor:
        """`values` (B, C, H, W) with the hole sub-pixels set by `choose`, carrying GRU states (`RowSampler`)."""
        filled = self.filled(images, masks)  # the fill: once per batch
        cond, prior = self.condition_tokens(images, masks, filled), self.mean_prior(filled)
        return RowSampler(self, values, hole_flags(masks), cond, choose, prior).run()


class RowSampler:
    """Fills the hole pixels in raster order, carrying GRU states instead of re-running the image.

    Rows without a hole in any image, and the parts of a hole row before its first / after its last
    hole column, run teacher-forced as one GRU call per channel; only the hole span steps pixel by
    pixel.
    """

    def __init__(
        self,
        model: RowRNNInpainter,
        values: torch.Tensor,
        holes: torch.Tensor,
        cond: torch.Tensor,
        choose: Chooser,
        prior: torch.Tensor | None = None,
    ) -> None:
        self.model, self.values, self.holes, self.cond, self.choose = model, values.clone(), holes, cond, choose
        self.prior = prior  # (B, H, W, C): the mixture means' starting point, or None

    def run(self) -> torch.Tensor:
        """Completed tokens (B, C, H, W)."""
        b, _, h, _ = self.values.shape
        hole_rows = self.holes[:, 0].any(0).any(1).nonzero().flatten().tolist()
        if not hole_rows:
            return self.values
        logger.debug("row sampler: %d hole rows of %d, batch %d", len(hole_rows), h, b)
        above = self._row(-1, self.model.initial_rows(self.values), [])
        for i in range(hole_rows[-1] + 1):  # rows below the last hole row cannot change anything
            above = self._row(i, above, self.holes[:, 0, i].any(0).nonzero().flatten().tolist())
        return self.values

    def _steps(
        self, c: int, i: int, k0: int, k1: int, above: torch.Tensor, state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.run_steps(c, self.values, self.cond, i, k0, k1, above, state)

    def _row(self, i: int, above: list[torch.Tensor], hole_cols: list[int]) -> list[torch.Tensor]:
        """Run row i (-1 = start row), filling its holes; returns each channel's row states (B, W+1, hidden)."""
        steps = self.values.shape[-1] + 1
        channels = range(self.model.channels)
        if not hole_cols:  # nothing to sample: one teacher-forced call per channel
            return [self._steps(c, i, 0, steps, above[c], None)[0] for c in channels]
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
                    self._fill(c, i, k, out[:, 0])
        if last + 1 < steps:  # the rest of the row (and its pad step) is fixed now: one call per channel
            for c in channels:
                outputs[c].append(self._steps(c, i, last + 1, steps, above[c], states[c])[0])
        return [torch.cat(parts, dim=1) for parts in outputs]

    def _fill(self, c: int, i: int, k: int, outputs: torch.Tensor) -> None:
        """Set sub-pixel (c, i, k) of every image with a hole there from the GRU outputs (B, hidden)."""
        rows = self.holes[:, 0, i, k].nonzero().squeeze(1)
        prior = None if self.prior is None else self.prior[rows, i, k]
        # Only the images with a hole here: a mixture's 256-way table is the sampler's costliest step.
        logits = self.model.channel_logits(c, outputs[rows], self.values[rows, :, i, k], prior)  # (b, 256)
        self.values[rows, c, i, k] = self.choose(logits, rows, self.values[rows, c, i, k])
