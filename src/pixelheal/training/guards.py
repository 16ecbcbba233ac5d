"""Divergence guards of the training loop: non-finite checks, the weights to return to, the untrained baseline.

A diverged epoch (a non-finite training term, weight or validation value) is never kept: with
`on_nonfinite: stop` the run ends with one line naming the epoch, so the caller saves nothing;
with `skip_epoch` the model and optimisers return to their state before that epoch. Best-epoch
selection only ever compares finite scores, and a best epoch worse than the untrained model
(an interpolating architecture's fill prior) is reported.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import torch

from pixelheal.evaluation.registry import is_better
from pixelheal.models.base import InpaintingModel
from pixelheal.training.ema import WeightAverage

logger = logging.getLogger(__name__)

Optimizers = dict[str, torch.optim.Optimizer]


class DivergedError(ValueError):
    """Training produced a non-finite loss, weight or validation value, or no epoch finished without one."""


class NonFinite(Exception):
    """An epoch went non-finite; the message says what (e.g. `train_loss is nan`)."""


def first_nonfinite(values: dict[str, float]) -> str | None:
    """`<key> is <value>` for the first non-finite value, or None."""
    return next((f"{key} is {value}" for key, value in values.items() if not math.isfinite(value)), None)


def nonfinite_weight(model: InpaintingModel) -> str | None:
    """`weight <name> is not finite` for the first such floating-point tensor of `model`, or None."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return f"weight {name} is not finite"
    return None


def improves(key: str, score: float, best: float | None) -> bool:
    """Whether a finite `score` beats `best`; a non-finite best (from an older resume state) is no best."""
    return best is None or not math.isfinite(best) or is_better(key, score, best)


def snapshot(model: InpaintingModel, optimizers: Optimizers, average: WeightAverage | None) -> dict[str, Any]:
    """Copies of the model, optimiser and weight-average states, to return to when an epoch diverges (`skip_epoch`)."""
    return copy.deepcopy(
        {
            "model": model.state_dict(),
            "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
            "average": None if average is None else average.state_dict(),
        }
    )


def restore(
    model: InpaintingModel, optimizers: Optimizers, average: WeightAverage | None, saved: dict[str, Any]
) -> None:
    """Return to a `snapshot`: a diverged step leaves NaN in Adam's moments and in the average too."""
    model.load_state_dict(saved["model"])
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(saved["optimizers"][name])
    if average is not None:
        average.load_state_dict(saved["average"])


def diverged(on_nonfinite: str, where: str, epoch: int, epochs: int, problem: str, last_good: int) -> None:
    """Stop the run (`on_nonfinite: stop`) or log that epoch `epoch` (0-based) is skipped (`skip_epoch`).

    `last_good` is the last epoch that finished finite (0: none), whose weights training goes on from.
    """
    if on_nonfinite == "stop":
        raise DivergedError(
            f"{where}: training diverged in epoch {epoch + 1} of {epochs} ({problem}); stopped without saving "
            f"a checkpoint, the previous one and its metrics are kept (lower {where}.lr, or set "
            f"{where}.on_nonfinite: skip_epoch)"
        )
    logger.warning(
        "%s: epoch %d of %d diverged (%s); skipped it and went on from the weights of %s",
        where,
        epoch + 1,
        epochs,
        problem,
        f"epoch {last_good}" if last_good else "the untrained model",
    )


def warn_if_worse_than_untrained(select_on: str, best: dict[str, Any], untrained: dict[str, float], where: str) -> None:
    """One warning when training made the model worse than it was before the first epoch."""
    baseline = untrained[select_on]
    if math.isfinite(baseline) and is_better(select_on, baseline, best["score"]):
        logger.warning(
            "%s: the best epoch (%d) has %s=%.4g, worse than the untrained model's %.4g on the same validation "
            "images (an interpolating model starts at its fill); the checkpoint is saved anyway: check %s.lr",
            where,
            best["epoch"],
            select_on,
            best["score"],
            baseline,
            where,
        )
