"""Nodes of the train_<arch> template: train one architecture, then score it on the test split."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from pixelheal.evaluation.grids import loss_curve, sample_grid
from pixelheal.evaluation.perceptual import PerceptualMetrics
from pixelheal.evaluation.scoring import architecture_metrics, complete_images, complete_samples, score_completions
from pixelheal.masks import make_mask_generator
from pixelheal.models import from_checkpoint, make_model
from pixelheal.training import TrainConfig, resolve_device, train

logger = logging.getLogger(__name__)


def _train_config(training: dict[str, Any]) -> TrainConfig:
    known = set(TrainConfig.__dataclass_fields__)
    unknown = set(training) - known - {"random_masks", "resume", "state_path"}
    if unknown:
        raise ValueError(f"training: unknown parameter(s) {sorted(unknown)}; known: {sorted(known)}")
    return TrainConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in training.items() if k in known})


def train_model(images: np.ndarray, masks: np.ndarray, split_indices: dict[str, list[int]],
                model: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    """Train the configured architecture; return the checkpoint of its best validation epoch."""
    cfg = _train_config(training)
    hparams = {k: v for k, v in model.items() if k != "kind"} | {"in_channels": int(images.shape[1])}
    torch.manual_seed(cfg.seed)
    net = make_model(model["kind"], **hparams)
    random_masks = training.get("random_masks")
    generator = make_mask_generator(**random_masks) if random_masks else None
    state_path = Path(training["state_path"]) if training.get("state_path") else None
    result = train(net, images, masks, np.asarray(split_indices["train"]), np.asarray(split_indices["val"]), cfg,
                   mask_generator=generator, state_path=state_path, resume=bool(training.get("resume")),
                   state_extra={"arch": model["kind"], "hparams": hparams})
    logger.info("%s: best epoch %d with %s=%.4g", model["kind"], result.best_epoch, cfg.select_on,
                result.best_metrics[cfg.select_on])
    return {"arch": model["kind"], "hparams": hparams, "model": result.best_state, "epoch": result.best_epoch,
            "metrics": result.best_metrics, "history": result.history, "training": dict(training),
            "image_size": [int(images.shape[2]), int(images.shape[3])]}


def evaluate_model(checkpoint: dict[str, Any], images: np.ndarray, masks: np.ndarray,
                   split_indices: dict[str, list[int]], evaluation: dict[str, Any]) -> tuple[dict[str, Any], Image.Image, Image.Image]:
    """Test metrics on the fixed test masks, a sample grid and the loss curve."""
    device = resolve_device(evaluation["device"])
    model = from_checkpoint(checkpoint).to(device)
    test = np.asarray(split_indices["test"])
    test_images, test_masks = images[test], masks[test]
    torch.manual_seed(evaluation["seed"])  # sampling architectures: the same completions on every rerun
    outputs, ms = complete_images(model.inpaint, test_images, test_masks, evaluation["batch_size"], device)
    perceptual = PerceptualMetrics(lpips=evaluation["lpips"], fid=evaluation["fid"], device=str(device))
    results = {"method": checkpoint["arch"], **score_completions(test_images, test_masks, outputs, perceptual, ms)}
    extra = architecture_metrics(model, test_images, test_masks, evaluation["batch_size"], device)
    results["metrics"].update({f"test_{name}": value for name, value in extra.items()})
    logger.info("%s test: %s", checkpoint["arch"], {k: round(v, 4) for k, v in results["metrics"].items()
                                                    if v is not None and "_area_" not in k})
    n = evaluation["grid_images"]
    samples = complete_samples(model, test_images[:n], test_masks[:n], evaluation["samples_per_image"], device)
    grid = sample_grid(test_images[:n], test_masks[:n], samples if len(samples) > 1 else samples[0], n=n)
    history = pd.DataFrame(checkpoint["history"])
    losses = [c for c in history.columns if c != "seconds" and not any(m in c for m in ("psnr", "ssim"))]
    return results, grid, loss_curve(history[losses])
