"""The one training loop every architecture uses: epochs → validation → best model → checkpoint.

Architecture specifics (losses, several optimisers, sampling) live in the model's
`InpaintingModel` methods, so this loop never changes when an architecture is added.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixelheal.config import require
from pixelheal.devices import resolve_device
from pixelheal.evaluation.registry import is_better
from pixelheal.models.base import InpaintingModel
from pixelheal.models.checkpoint import TRAIN_STATE_FORMAT
from pixelheal.storage import write_atomically
from pixelheal.training.data import EpochBatches, MaskGenerator, make_loader
from pixelheal.training.optim import OPTIMIZERS, make_optimizer

logger = logging.getLogger(__name__)

LR_SCHEDULES = ("constant", "cosine")


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


@dataclass
class TrainResult:
    """The best model's weights and the per-epoch history."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int  # 1-based, like every epoch number in the history
    best_metrics: dict[str, float]
    history: list[dict[str, float]]


def _lr_factor(cfg: TrainConfig, epoch: int, elapsed: float) -> float:
    """Learning-rate multiplier for an epoch: cosine over the epochs, or over the time budget if sooner."""
    if cfg.lr_schedule == "constant":
        return 1.0
    progress = epoch / cfg.epochs
    if cfg.time_budget_s:
        progress = max(progress, elapsed / cfg.time_budget_s)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _save_state(path: Path, state: dict[str, Any]) -> None:
    """Write the resume state atomically, so a kill mid-write never corrupts the last good one."""
    write_atomically(path, lambda tmp: torch.save({"format": TRAIN_STATE_FORMAT, **state}, tmp))


def _load_state(path: Path, device: torch.device) -> dict[str, Any]:
    """The resume state in `path`, refused with one line unless training wrote it."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # not a torch file, or one pickling arbitrary objects
        raise ValueError(
            f"{path} is not a PixelHeal training state ({type(error).__name__}); delete it or set resume: false"
        ) from None
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        raise ValueError(
            f"{path} is not a PixelHeal training state (no {TRAIN_STATE_FORMAT!r} marker); "
            "delete it or set resume: false"
        )
    return state


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
) -> TrainResult:
    """Train `model` on `train_idx`, keep the epoch best on `cfg.select_on` over `val_idx`.

    With `state_path`, the full state is saved after every epoch; `resume=True` continues from it.
    `mask_generator` draws fresh training masks per batch instead of the precomputed `masks`.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    model.to(device)
    optimizers = model.make_optimizers(
        partial(make_optimizer, cfg.optimizer, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    )
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": -1, "metrics": {}, "state": None, "score": None}
    start = 0
    if resume and state_path is not None and state_path.is_file():
        state = _load_state(state_path, device)
        model.load_state_dict(state["model"])
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        history, best, start = state["history"], state["best"], state["epochs_done"]
        logger.info("resuming from %s after epoch %d of %d", state_path, start, cfg.epochs)

    started = time.perf_counter()
    for epoch in range(start, cfg.epochs):
        tick = time.perf_counter()
        if (
            cfg.time_budget_s
            and epoch > start
            and (tick - started) * (epoch + 1 - start) / (epoch - start) > cfg.time_budget_s
        ):
            logger.info(
                "time budget of %.0f s reached: stopping after epoch %d of %d", cfg.time_budget_s, epoch, cfg.epochs
            )
            break
        torch.manual_seed(cfg.seed * 100_003 + epoch)  # per-epoch seed: a resumed epoch equals the original
        for optimizer in optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * _lr_factor(cfg, epoch, tick - started)
        batches = EpochBatches(
            images,
            masks,
            train_idx,
            cfg.batch_size,
            seed=cfg.seed,
            epoch=epoch,
            flip=cfg.flip,
            mask_generator=mask_generator,
        )
        model.train()
        totals: dict[str, float] = {}
        for x, m in make_loader(batches, cfg.num_workers, device.type == "cuda"):
            x, m = x.to(device, non_blocking=True), m.to(device, non_blocking=True)
            for name, value in model.training_step(x, m, optimizers).items():
                totals[name] = totals.get(name, 0.0) + value * len(x)
        record = {"epoch": epoch + 1, **{f"train_{k}": v / len(train_idx) for k, v in totals.items()}}
        record.update(validate(model, images, masks, val_idx, cfg.batch_size, device))
        record["seconds"] = time.perf_counter() - tick
        history.append(record)

        score = record.get(cfg.select_on)
        if score is None:
            raise ValueError(f"training.select_on: {cfg.select_on!r} is not among {sorted(record)}")
        if is_better(cfg.select_on, score, best["score"]):
            state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            best = {"epoch": epoch + 1, "metrics": record, "state": state_dict, "score": score}
        if state_path is not None:
            _save_state(
                state_path,
                {
                    **(state_extra or {}),
                    "model": model.state_dict(),
                    "epochs_done": epoch + 1,
                    "history": history,
                    "best": best,
                    "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
                    "config": asdict(cfg),
                },
            )
        elapsed = time.perf_counter() - started
        eta = elapsed / (epoch + 1 - start) * (cfg.epochs - epoch - 1)
        _log_epoch(record, cfg.epochs, min(eta, max(cfg.time_budget_s - elapsed, 0)) if cfg.time_budget_s else eta)
        if on_epoch is not None:
            on_epoch(record)

    return TrainResult(best["state"], best["epoch"], best["metrics"], history)


def _log_epoch(record: dict[str, float], epochs: int, eta: float) -> None:
    losses = " ".join(f"{k}={v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds"))
    logger.info(
        "epoch %d/%d %s | %.1fs | ETA %dm%02ds", record["epoch"], epochs, losses, record["seconds"], eta // 60, eta % 60
    )
