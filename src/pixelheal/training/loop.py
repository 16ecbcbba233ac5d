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

import contextlib
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
from pixelheal.training.ema import WeightAverage
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
from pixelheal.training.throughput import (
    PRECISIONS,
    autocast,
    autocast_dtype,
    compile_networks,
    grad_scaler,
    memory_format,
)

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
    muon_lr: float = 0.02  # optimizer muon: the rate of its orthogonalised weight matrices (`lr`: the other parameters)
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
    warmup_fraction: float = 0.0  # share of the run (steps, or the time budget) with a linear warm-up from 0
    ema_decay: float | None = None  # a moving average of the weights is validated and kept (None: the raw weights)
    precision: str = "fp32"  # one of PRECISIONS (see training.throughput)
    channels_last: bool = False  # networks and batches in NHWC
    compile: bool = False  # torch.compile the networks, falling back to eager where it cannot
    pin_memory: bool | None = None  # page-locked batches for the copy to the GPU; None: on CUDA only
    on_nonfinite: str = "stop"  # a non-finite loss, weight or score: "stop" the run, or "skip_epoch" and go on
    distributed: DistributedConfig = field(default_factory=DistributedConfig)  # data-parallel ranks

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            require(getattr(self, name) >= 1, name, f"must be at least 1, got {getattr(self, name)}")
        require(
            self.optimizer in OPTIMIZERS, "optimizer", f"unknown kind {self.optimizer!r}; known: {list(OPTIMIZERS)}"
        )
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(self.muon_lr > 0, "muon_lr", f"must be positive, got {self.muon_lr}")
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
        require(0 <= self.warmup_fraction < 1, "warmup_fraction", f"must be in [0, 1), got {self.warmup_fraction}")
        require(
            self.ema_decay is None or 0 < self.ema_decay < 1,
            "ema_decay",
            f"must be in (0, 1) or null, got {self.ema_decay}",
        )
        require(
            self.precision in PRECISIONS, "precision", f"expected one of {list(PRECISIONS)}, got {self.precision!r}"
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


def _lr_factor(cfg: TrainConfig, progress: float) -> float:
    """Learning-rate multiplier at `progress` (0 at the start, 1 at the end): the warm-up, then the schedule."""
    if progress < cfg.warmup_fraction:
        return progress / cfg.warmup_fraction
    if cfg.lr_schedule == "constant":
        return 1.0
    after = (progress - cfg.warmup_fraction) / (1 - cfg.warmup_fraction)
    return 0.5 * (1 + math.cos(math.pi * min(after, 1.0)))


@dataclass(frozen=True)
class _Clock:
    """Where an epoch starts in the run, so that a step's progress is known without reading the clock.

    Progress counts steps over the epochs, or the time budget if that ends sooner, at the pace of the
    epochs so far (`seconds_per_epoch`, 0 before the first has finished): rank 0's figures, so every
    rank sets the same learning rate.
    """

    epoch: int
    epochs: int
    elapsed: float
    seconds_per_epoch: float
    time_budget_s: float | None

    def progress(self, fraction: float) -> float:
        """The run's progress `fraction` of the way through this epoch."""
        by_steps = (self.epoch + fraction) / self.epochs
        if not self.time_budget_s:
            return by_steps
        return max(by_steps, (self.elapsed + fraction * self.seconds_per_epoch) / self.time_budget_s)


@dataclass(frozen=True)
class _Step:
    """How each training step runs: the device, autocast, the float16 GradScaler, layout and weight average."""

    device: torch.device
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None
    layout: torch.memory_format
    average: WeightAverage | None
    pin_memory: bool


@torch.no_grad()
def validate(
    model: InpaintingModel,
    images: np.ndarray,
    masks: np.ndarray,
    indices: np.ndarray,
    batch_size: int,
    device: torch.device,
    layout: torch.memory_format = torch.contiguous_format,
) -> dict[str, float]:
    """Mean validation metrics over fixed masks (no shuffling, no augmentation), in float32."""
    model.eval()
    batches = EpochBatches(images, masks, indices, batch_size, seed=0, epoch=0, shuffle=False)
    totals: dict[str, float] = {}
    for x, m in make_loader(batches, 0, False):
        x, m = x.to(device, memory_format=layout), m.to(device, memory_format=layout)
        for name, value in model.validation_step(x, m).items():
            totals[name] = totals.get(name, 0.0) + value * len(x)
    return {f"val_{name}": total / len(indices) for name, total in totals.items()}


def _set_lr(optimizers: dict[str, torch.optim.Optimizer], lr: float) -> None:
    """The scheduled rate `lr` in every group, times the group's own `lr_scale` (Muon's matrices: muon_lr / lr)."""
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)


def _train_epoch(
    model: InpaintingModel,
    optimizers: dict[str, torch.optim.Optimizer],
    batches: EpochBatches,
    cfg: TrainConfig,
    clock: _Clock,
    step: _Step,
    ranks: Ranks,
) -> tuple[dict[str, float], int]:
    """Training terms of one epoch summed over its images (of every rank), and how many images that is.

    Raises NonFinite at the first non-finite term or weight.
    """
    model.train()
    totals: dict[str, float] = {}
    seen = 0
    with ranks.parallel(model):
        for b, (x, m) in enumerate(make_loader(batches, cfg.num_workers, step.pin_memory)):
            _set_lr(optimizers, cfg.lr * _lr_factor(cfg, clock.progress(b / len(batches))))
            x = x.to(step.device, memory_format=step.layout, non_blocking=True)
            m = m.to(step.device, memory_format=step.layout, non_blocking=True)
            with autocast(step.device, step.dtype):
                terms = model.training_step(x, m, optimizers, step.scaler)
            if step.scaler is not None:
                step.scaler.update()
            if step.average is not None:
                step.average.update()
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


def _validate(model: InpaintingModel, data: _Data, cfg: TrainConfig, step: _Step) -> dict[str, float]:
    """Validation metrics of the model as it is kept: its weight average, if any."""
    scored = step.average.swapped_in() if step.average is not None else contextlib.nullcontext()
    with scored:
        return validate(model, data.images, data.masks, data.val_idx, cfg.batch_size, step.device, step.layout)


def _untrained_scores(
    model: InpaintingModel, data: _Data, cfg: TrainConfig, step: _Step, where: str
) -> dict[str, float]:
    """The validation metrics before any training, which also tells whether `select_on` exists."""
    if len(data.val_idx) == 0:
        raise ValueError(f"{where}: the validation split is empty; give split.fractions.val a positive share")
    untrained = _validate(model, data, cfg, step)
    if cfg.select_on not in untrained:
        raise ValueError(f"{where}.select_on: {cfg.select_on!r} is not among {sorted(untrained)}")
    return untrained


def _run_epoch(
    model: InpaintingModel,
    optimizers: dict[str, torch.optim.Optimizer],
    data: _Data,
    cfg: TrainConfig,
    clock: _Clock,
    step: _Step,
    where: str,
    last_good: int,
    ranks: Ranks,
) -> dict[str, float] | None:
    """Train and validate epoch `clock.epoch` (0-based): its record, or None when it diverged and was skipped.

    `last_good` is the last epoch that finished finite (0: none), named when this one is skipped.
    """
    epoch = clock.epoch
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # per-epoch seed: a resumed epoch equals the original
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
    before = snapshot(model, optimizers, step.average) if cfg.on_nonfinite == "skip_epoch" else None
    try:
        totals, seen = _train_epoch(model, optimizers, batches, cfg, clock, step, ranks)
        ranks.check_in_sync(model, where)
        validation = ranks.broadcast(_validate(model, data, cfg, step) if ranks.leader else None)
        problem = first_nonfinite(validation)
        if problem:
            raise NonFinite(problem)
    except NonFinite as error:
        diverged(cfg.on_nonfinite, where, epoch, cfg.epochs, str(error), last_good)  # raises unless skip_epoch
        restore(model, optimizers, step.average, before)
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
    layout = memory_format(cfg.channels_last)
    model.to(device, memory_format=layout)
    dtype = autocast_dtype(cfg.precision, device, f"{where}.precision")
    if cfg.compile:
        compile_networks(model, device, where)
    optimizers = model.make_optimizers(
        partial(
            make_optimizer,
            cfg.optimizer,
            lr=cfg.lr,
            betas=tuple(cfg.betas),
            weight_decay=cfg.weight_decay,
            muon_lr=cfg.muon_lr,
        )
    )
    average = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay and ranks.leader else None
    pin_memory = device.type == "cuda" if cfg.pin_memory is None else cfg.pin_memory
    step = _Step(device, dtype, grad_scaler(device, dtype), layout, average, pin_memory)
    data = _Data(images, masks, train_idx, val_idx, mask_generator)
    untrained = _untrained_scores(model, data, cfg, step, where) if ranks.leader else {}
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": -1, "metrics": {}, "state": None, "score": None}
    start = 0
    if resume:
        on = device if ranks.world_size == 1 else torch.device("cpu")  # broadcast as CPU tensors
        state = ranks.broadcast(read_state(state_path, on, state_extra or {}) if ranks.leader else None)
        apply_state(state, model, optimizers, average, state_path)
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
        pace = elapsed / (epoch - start) if epoch > start else 0.0
        clock = _Clock(epoch, cfg.epochs, elapsed, pace, cfg.time_budget_s)
        record = _run_epoch(model, optimizers, data, cfg, clock, step, where, last_good, ranks)
        if record is not None:
            record["seconds"] = time.perf_counter() - tick
            history.append(record)
            if ranks.leader:
                best = _keep_best(best, record, average.average if average else model.state_dict(), cfg.select_on)
        if state_path is not None and ranks.leader:
            state = resume_state(model, optimizers, asdict(cfg), epoch + 1, history, best, state_extra, average)
            save_state(state_path, state)
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
    best: dict[str, Any], record: dict[str, float], weights: dict[str, torch.Tensor], select_on: str
) -> dict[str, Any]:
    """The new best epoch when `record` (finite, as every recorded epoch is) improves on `best`, else `best`.

    `weights` are the model's as validated (its weight average, if any); they are kept float32 and contiguous.
    """
    if not improves(select_on, record[select_on], best["score"]):
        return best
    state_dict = {k: v.detach().cpu().contiguous().clone() for k, v in weights.items()}
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
