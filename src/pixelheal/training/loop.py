"""The one training loop every architecture uses: epochs → validation → best model → checkpoint.

Architecture specifics (losses, several optimisers, sampling) live in the model's
`InpaintingModel` methods, so this loop never changes when an architecture is added.

A run that diverges never passes for a trained model: a non-finite training loss, weight or
validation value stops the run with one line naming the epoch (`on_nonfinite: stop`, so the
caller saves nothing), or restores the weights from before that epoch and goes on (`skip_epoch`).
The untrained model is validated once first (an interpolating architecture's fill prior), and a
best epoch worse than that is reported as a warning.

Data-parallel (`ranks`, see `training.distributed`): every rank trains on its share of each global
batch with its networks wrapped in DistributedDataParallel; the loss terms are summed over the ranks
every step, so all of them see the same (global) values and stop at the same step; rank 0 alone
validates, keeps the best weights, writes the resume state and reports, and broadcasts whatever the
others must decide alike (validation scores, elapsed time, the resume state, the result).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pixelheal.config import require
from pixelheal.devices import resolve_device
from pixelheal.models.base import InpaintingModel
from pixelheal.training.data import EpochBatches, MaskGenerator, make_loader
from pixelheal.training.distributed import SINGLE, DistributedConfig, Ranks
from pixelheal.training.guards import (
    DivergedError,
    NonFinite,
    diverged,
    first_nonfinite,
    improves,
    nonfinite_weight,
    restore,
    snapshot,
    warn_if_worse_than_untrained,
)
from pixelheal.training.optim import OPTIMIZERS, make_optimizer
from pixelheal.training.state import apply_state, read_state, require_state, resume_state, save_state

logger = logging.getLogger(__name__)

LR_SCHEDULES = ("constant", "cosine")
ON_NONFINITE = ("stop", "skip_epoch")


@dataclass(frozen=True)
class TrainConfig:
    """Everything the loop needs besides the model and the data (declared: see `pixelheal.config`)."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adamw"  # one of OPTIMIZERS
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    device: str = "auto"
    seed: int = 0
    flip: bool = True
    select_on: str = "val_psnr"  # its direction comes from the metric registry (losses: lower is better)
    num_workers: int = 0
    threads: int | None = None
    time_budget_s: float | None = None  # stop before an epoch that would end past this many seconds
    lr_schedule: str = "constant"  # or "cosine": decays to 0 over the epochs (or the time budget)
    on_nonfinite: str = "stop"  # a non-finite loss, weight or score: "stop" the run, or "skip_epoch" and go on
    distributed: DistributedConfig = field(default_factory=DistributedConfig)  # data-parallel ranks

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            require(getattr(self, name) >= 1, name, f"must be at least 1, got {getattr(self, name)}")
        require(
            self.optimizer in OPTIMIZERS, "optimizer", f"unknown kind {self.optimizer!r}; known: {list(OPTIMIZERS)}"
        )
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(all(0 <= beta < 1 for beta in self.betas), "betas", f"must be in [0, 1), got {list(self.betas)}")
        require(self.weight_decay >= 0, "weight_decay", f"must be at least 0, got {self.weight_decay}")
        require(self.num_workers >= 0, "num_workers", f"must be at least 0, got {self.num_workers}")
        require(self.threads is None or self.threads >= 1, "threads", f"must be at least 1 or null, got {self.threads}")
        require(
            self.time_budget_s is None or self.time_budget_s > 0,
            "time_budget_s",
            f"must be positive or null, got {self.time_budget_s}",
        )
        require(
            self.lr_schedule in LR_SCHEDULES,
            "lr_schedule",
            f"expected one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}",
        )
        require(
            self.on_nonfinite in ON_NONFINITE,
            "on_nonfinite",
            f"expected one of {list(ON_NONFINITE)}, got {self.on_nonfinite!r}",
        )


@dataclass
class TrainResult:
    """The best model's weights, the per-epoch history and the untrained model's validation metrics."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int  # 1-based, like every epoch number in the history
    best_metrics: dict[str, float]
    history: list[dict[str, float]]
    untrained: dict[str, float] = field(default_factory=dict)  # val_* before the first epoch: the fill prior


def _lr_factor(cfg: TrainConfig, epoch: int, elapsed: float) -> float:
    """Learning-rate multiplier for an epoch: cosine over the epochs, or over the time budget if sooner."""
    if cfg.lr_schedule == "constant":
        return 1.0
    progress = epoch / cfg.epochs
    if cfg.time_budget_s:
        progress = max(progress, elapsed / cfg.time_budget_s)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


@torch.no_grad()
def validate(
    model: InpaintingModel,
    images: np.ndarray,
    masks: np.ndarray,
    indices: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> dict[str, float]:
    """Mean validation metrics over fixed masks (no shuffling, no augmentation)."""
    model.eval()
    batches = EpochBatches(images, masks, indices, batch_size, seed=0, epoch=0, shuffle=False)
    totals: dict[str, float] = {}
    for x, m in make_loader(batches, 0, False):
        x, m = x.to(device), m.to(device)
        for name, value in model.validation_step(x, m).items():
            totals[name] = totals.get(name, 0.0) + value * len(x)
    return {f"val_{name}": total / len(indices) for name, total in totals.items()}


def _train_epoch(
    model: InpaintingModel,
    optimizers: dict[str, torch.optim.Optimizer],
    batches: EpochBatches,
    num_workers: int,
    device: torch.device,
    ranks: Ranks,
) -> tuple[dict[str, float], int]:
    """Training terms of one epoch summed over its images (of every rank), and how many images that is.

    Raises NonFinite at the first non-finite term or weight.
    """
    model.train()
    totals: dict[str, float] = {}
    seen = 0
    with ranks.parallel(model):
        for x, m in make_loader(batches, num_workers, device.type == "cuda"):
            x, m = x.to(device, non_blocking=True), m.to(device, non_blocking=True)
            terms = model.training_step(x, m, optimizers)
            summed = ranks.sum({"images": len(x)} | {name: value * len(x) for name, value in terms.items()})
            seen += int(summed.pop("images"))
            problem = first_nonfinite({f"train_{name}": value for name, value in summed.items()})
            if problem:  # every later step would only spread it: stop the epoch here
                raise NonFinite(problem)
            for name, value in summed.items():
                totals[name] = totals.get(name, 0.0) + value
    problem = ranks.broadcast(nonfinite_weight(model))  # rank 0's buffers are the ones kept
    if problem:
        raise NonFinite(problem)
    return totals, seen


def _over_budget(cfg: TrainConfig, start: int, epoch: int, elapsed: float) -> bool:
    """Whether the next epoch would end past the time budget, at the pace of the epochs so far."""
    return (
        bool(cfg.time_budget_s)
        and epoch > start
        and elapsed * (epoch + 1 - start) / (epoch - start) > cfg.time_budget_s
    )


@dataclass(frozen=True)
class _Data:
    """What one epoch reads: the arrays, the two index sets and the optional random-mask generator."""

    images: np.ndarray
    masks: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    mask_generator: MaskGenerator | None


def _untrained_scores(
    model: InpaintingModel, data: _Data, cfg: TrainConfig, device: torch.device, where: str
) -> dict[str, float]:
    """The validation metrics before any training, which also tells whether `select_on` exists."""
    if len(data.val_idx) == 0:
        raise ValueError(f"{where}: the validation split is empty; give split.fractions.val a positive share")
    untrained = validate(model, data.images, data.masks, data.val_idx, cfg.batch_size, device)
    if cfg.select_on not in untrained:
        raise ValueError(f"{where}.select_on: {cfg.select_on!r} is not among {sorted(untrained)}")
    return untrained


def _run_epoch(
    model: InpaintingModel,
    optimizers: dict[str, torch.optim.Optimizer],
    data: _Data,
    cfg: TrainConfig,
    epoch: int,
    elapsed: float,
    device: torch.device,
    where: str,
    last_good: int,
    ranks: Ranks,
) -> dict[str, float] | None:
    """Train and validate epoch `epoch` (0-based): its history record, or None when it diverged and was skipped.

    `last_good` is the last epoch that finished finite (0: none), named when this one is skipped.
    """
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # per-epoch seed: a resumed epoch equals the original
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * _lr_factor(cfg, epoch, elapsed)
    batches = EpochBatches(
        data.images,
        data.masks,
        data.train_idx,
        cfg.batch_size,
        seed=cfg.seed,
        epoch=epoch,
        flip=cfg.flip,
        mask_generator=data.mask_generator,
        rank=ranks.rank,
        world_size=ranks.world_size,
    )
    before = snapshot(model, optimizers) if cfg.on_nonfinite == "skip_epoch" else None
    try:
        totals, seen = _train_epoch(model, optimizers, batches, cfg.num_workers, device, ranks)
        ranks.check_in_sync(model, where)
        validation = ranks.broadcast(
            validate(model, data.images, data.masks, data.val_idx, cfg.batch_size, device) if ranks.leader else None
        )
        problem = first_nonfinite(validation)
        if problem:
            raise NonFinite(problem)
    except NonFinite as error:
        diverged(cfg.on_nonfinite, where, epoch, cfg.epochs, str(error), last_good)  # raises unless skip_epoch
        restore(model, optimizers, before)
        return None
    return {"epoch": epoch + 1, **{f"train_{k}": v / seen for k, v in totals.items()}, **validation}


def train(
    model: InpaintingModel,
    images: np.ndarray,
    masks: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    cfg: TrainConfig,
    *,
    mask_generator: MaskGenerator | None = None,
    state_path: Path | None = None,
    resume: bool = False,
    state_extra: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    where: str = "training",
    ranks: Ranks = SINGLE,
) -> TrainResult:
    """Train `model` on `train_idx`, keep the epoch best on `cfg.select_on` over `val_idx`.

    With `state_path`, the full state is saved after every finished epoch (never one with
    non-finite weights); `resume=True` continues from it: it must exist and match `state_extra`
    (the train node's architecture and hyper-parameters). `mask_generator` draws fresh training
    masks per batch instead of the precomputed `masks`. `where` is the parameter block named in
    messages (e.g. `unet_frm.training`). `ranks` places this call among data-parallel ranks (started
    by `training.distributed.run_ranks`, which gives each its device); only rank 0 uses `state_path`
    and `on_epoch`, and every rank returns rank 0's result.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = ranks.device or resolve_device(cfg.device, where=f"{where}.device")
    if resume and ranks.leader:
        require_state(state_path, where)
    if ranks.world_size > 1 and device.type == "cuda":  # torch's SyncBatchNorm runs on CUDA only
        nn.SyncBatchNorm.convert_sync_batchnorm(model)  # in place; same parameters, same state_dict keys
    model.to(device)
    optimizers = model.make_optimizers(
        partial(make_optimizer, cfg.optimizer, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    )
    data = _Data(images, masks, train_idx, val_idx, mask_generator)
    untrained = _untrained_scores(model, data, cfg, device, where) if ranks.leader else {}
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": -1, "metrics": {}, "state": None, "score": None}
    start = 0
    if resume:
        on = device if ranks.world_size == 1 else torch.device("cpu")  # broadcast as CPU tensors
        state = ranks.broadcast(read_state(state_path, on, state_extra or {}) if ranks.leader else None)
        apply_state(state, model, optimizers, state_path)
        history, best, start = state["history"], state["best"], state["epochs_done"]
        if ranks.leader:
            logger.info("resuming from %s after epoch %d of %d", state_path, start, cfg.epochs)

    started = time.perf_counter()
    for epoch in range(start, cfg.epochs):
        tick = time.perf_counter()
        elapsed = ranks.broadcast(tick - started)  # rank 0's clock: every rank takes the same budget decisions
        if _over_budget(cfg, start, epoch, elapsed):
            if ranks.leader:
                logger.info(
                    "time budget of %.0f s reached: stopping after epoch %d of %d", cfg.time_budget_s, epoch, cfg.epochs
                )
            break
        last_good = history[-1]["epoch"] if history else 0
        record = _run_epoch(model, optimizers, data, cfg, epoch, elapsed, device, where, last_good, ranks)
        if record is not None:
            record["seconds"] = time.perf_counter() - tick
            history.append(record)
            if ranks.leader:
                best = _keep_best(best, record, model, cfg.select_on)
        if state_path is not None and ranks.leader:
            save_state(state_path, resume_state(model, optimizers, asdict(cfg), epoch + 1, history, best, state_extra))
        if record is not None and ranks.leader:
            _log_epoch(record, cfg, epoch - start + 1, time.perf_counter() - started)
            if on_epoch is not None:
                on_epoch(record)
    return ranks.broadcast(_result(best, history, untrained, cfg, where) if ranks.leader else None)


def _result(
    best: dict[str, Any], history: list[dict[str, float]], untrained: dict[str, float], cfg: TrainConfig, where: str
) -> TrainResult:
    """The best epoch's result, or DivergedError when no epoch finished finite."""
    if best["state"] is None:
        raise DivergedError(
            f"{where}: no epoch finished with finite losses, weights and scores; nothing was saved (lower {where}.lr)"
        )
    warn_if_worse_than_untrained(cfg.select_on, best, untrained, where)
    return TrainResult(best["state"], best["epoch"], best["metrics"], history, untrained)


def _keep_best(
    best: dict[str, Any], record: dict[str, float], model: InpaintingModel, select_on: str
) -> dict[str, Any]:
    """The new best epoch when `record` (finite, as every recorded epoch is) improves on `best`, else `best`."""
    if not improves(select_on, record[select_on], best["score"]):
        return best
    state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {"epoch": record["epoch"], "metrics": record, "state": state_dict, "score": record[select_on]}


def _log_epoch(record: dict[str, float], cfg: TrainConfig, epochs_run: int, elapsed: float) -> None:
    """One line per epoch: its losses and scores, its time and the time left (within the budget, if any)."""
    eta = elapsed / epochs_run * (cfg.epochs - record["epoch"])
    if cfg.time_budget_s:
        eta = min(eta, max(cfg.time_budget_s - elapsed, 0))
    losses = " ".join(f"{k}={v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds"))
    logger.info(
        "epoch %d/%d %s | %.1fs | ETA %dm%02ds",
        record["epoch"],
        cfg.epochs,
        losses,
        record["seconds"],
        eta // 60,
        eta % 60,
    )
