"""Nodes of the train_<arch> template: train one architecture, then score it on the test split."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from pixelheal.config import parse, require
from pixelheal.devices import resolve_device
from pixelheal.evaluation.generation import epoch_pictures, progress_picture
from pixelheal.evaluation.grids import loss_curve, sample_grid
from pixelheal.evaluation.perceptual import PerceptualMetrics
from pixelheal.evaluation.registry import higher_is_better
from pixelheal.evaluation.scoring import (
    architecture_metrics,
    complete_draws,
    complete_images,
    complete_samples,
    score_completions,
)
from pixelheal.masks import make_mask_generator
from pixelheal.models import ARCHITECTURES, from_checkpoint, make_model
from pixelheal.models.base import InpaintingModel
from pixelheal.models.checkpoint import Checkpoint
from pixelheal.training import TrainConfig, TrainResult, train
from pixelheal.training.data import MappedArray, opened, portable
from pixelheal.training.distributed import Ranks, require_parallel, run_ranks

logger = logging.getLogger(__name__)

PROGRESS_IMAGES = 8  # validation images in each reconstruction grid of `picture_epochs`


@dataclass(frozen=True)
class TrainingParameters(TrainConfig):
    """An `<arch>.training` block: the loop's settings plus what this node wires around the loop."""

    random_masks: dict[str, Any] | None = None  # a mask generator block (as masks.generator): fresh masks per batch
    resume: bool = False  # continue from the resume state after an interruption
    state_path: str | None = None  # the resume state's file; null: beside the checkpoint (the `train_state` input)
    picture_epochs: tuple[int, ...] = ()  # epochs after which a generation / reconstruction grid is kept (`progress`)


def training_parameters(training: dict[str, Any], where: str) -> TrainingParameters:
    """The `training` block checked once; every error names `<where>.<key>` (e.g. `unet_frm.training.epochs`)."""
    return parse(TrainingParameters, training, where)


def _require_splits(split_indices: dict[str, list[int]], names: tuple[str, ...]) -> None:
    """Refuse split indices without images in one of `names`, before anything is trained or scored on them."""
    for name in names:
        if not split_indices.get(name):
            raise ValueError(
                f"split_indices has no {name} images; give split.fractions.{name} a positive share "
                "and rerun `kedro run --pipeline=split`"
            )


def train_model(
    images: np.ndarray,
    masks: np.ndarray,
    split_indices: dict[str, list[int]],
    model: dict[str, Any],
    training: dict[str, Any],
    train_state: Path,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> tuple[Checkpoint, dict[str, Image.Image]]:
    """Train the configured architecture; return the checkpoint of its best validation epoch.

    `train_state` is where the resume state is kept (derived from the checkpoint's path by the
    catalog) unless `training.state_path` overrides it. A run that diverges raises (one line
    naming the epoch), so Kedro saves no checkpoint and the previous one stays. The checkpoint's
    metrics add the untrained model's validation metrics as `val_<metric>_untrained`. The pictures
    are the `training.picture_epochs` progress grids, by name (`epoch_010`); none when it is empty.
    `on_epoch` also sees every epoch's history record (a tuning trial reports and prunes there).
    With `training.distributed.world_size` > 1 this process is rank 0 (it alone validates, writes
    the resume state, calls `on_epoch` and returns the checkpoint) and starts the other local ranks.
    """
    kind = model["kind"]
    where = f"{kind}.training"
    params = training_parameters(training, where)
    _require_splits(split_indices, ("train", "val", "test"))  # evaluate needs test: fail before training
    hparams = {k: v for k, v in model.items() if k != "kind"} | {"in_channels": int(images.shape[1])}
    device = resolve_device(params.device, where=f"{where}.device")
    net = _model(kind, hparams, params.seed)
    if params.distributed.world_size > 1:
        require_parallel(net, kind, f"{where}.distributed")
    state_path = Path(params.state_path) if params.state_path else Path(train_state)
    pictures: dict[str, Image.Image] = {}
    shown = np.asarray(split_indices["val"])[:PROGRESS_IMAGES]
    picture = progress_picture(net, images[shown], masks[shown], seed=params.seed)
    keep_pictures = epoch_pictures(
        net, picture, params.picture_epochs, lambda e, p: pictures.update({f"epoch_{e:03d}": p})
    )

    def after_epoch(record: dict[str, float]) -> None:
        keep_pictures(record)
        if on_epoch is not None:
            on_epoch(record)

    job = _Training(
        portable(images),
        portable(masks),
        np.asarray(split_indices["train"]),
        np.asarray(split_indices["val"]),
        kind,
        hparams,
        params,
        where,
    )
    leader = partial(job.run, net, state_path=state_path, on_epoch=after_epoch)
    result = run_ranks(leader, job, params.distributed, device, f"{where}.distributed")
    logger.info(
        "%s: best epoch %d with %s=%.4g",
        kind,
        result.best_epoch,
        params.select_on,
        result.best_metrics[params.select_on],
    )
    checkpoint = Checkpoint(
        arch=kind,
        hparams=hparams,
        model=result.best_state,
        epoch=result.best_epoch,
        metrics=result.best_metrics | {f"{name}_untrained": value for name, value in result.untrained.items()},
        history=result.history,
        training=dict(training),
        image_size=(int(images.shape[2]), int(images.shape[3])),
    )
    return checkpoint, pictures


def _model(kind: str, hparams: dict[str, Any], seed: int) -> InpaintingModel:
    """The untrained model, seeded: every rank builds the same one."""
    torch.manual_seed(seed)
    return make_model(kind, **hparams)


@dataclass(frozen=True)
class _Training:
    """One architecture's training, sent to every started rank (memory-mapped arrays travel as their files)."""

    images: np.ndarray | MappedArray
    masks: np.ndarray | MappedArray
    train_idx: np.ndarray
    val_idx: np.ndarray
    kind: str
    hparams: dict[str, Any]
    params: TrainingParameters
    where: str

    def run(
        self,
        net: InpaintingModel,
        ranks: Ranks,
        state_path: Path | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
    ) -> TrainResult:
        """Train `net` as one rank; rank 0 (the node's process) keeps the resume state and sees the epochs."""
        params, where = self.params, self.where
        generator = (
            make_mask_generator(**params.random_masks, where=f"{where}.random_masks") if params.random_masks else None
        )
        return train(
            net,
            opened(self.images),
            opened(self.masks),
            self.train_idx,
            self.val_idx,
            params,
            mask_generator=generator,
            state_path=state_path,
            resume=params.resume,
            state_extra={"arch": self.kind, "hparams": self.hparams},
            where=where,
            on_epoch=on_epoch,
            ranks=ranks,
        )

    def __call__(self, ranks: Ranks) -> None:
        """A started rank: the same untrained model, no resume state of its own, no callbacks."""
        self.run(_model(self.kind, self.hparams, self.params.seed), ranks)


def evaluate_model(
    checkpoint: Checkpoint,
    images: np.ndarray,
    masks: np.ndarray,
    split_indices: dict[str, list[int]],
    evaluation: dict[str, Any],
    model: dict[str, Any],
) -> tuple[dict[str, Any], Image.Image, Image.Image]:
    """Test metrics on the fixed test masks, a sample grid and the loss curve.

    `model` is the namespace's model block: a checkpoint of another architecture (a file copied
    or renamed by hand) is refused instead of being reported under this namespace's name.
    """
    kind = model["kind"]
    if checkpoint.arch != kind:
        raise ValueError(
            f"{checkpoint.source} holds a {checkpoint.arch!r} model, not the {kind!r} of {kind}.model.kind; "
            f"retrain it with `kedro run --pipeline=train_{kind}`"
        )
    _require_splits(split_indices, ("test",))
    device = resolve_device(evaluation["device"], where="evaluation.device")
    net = from_checkpoint(checkpoint).to(device)
    test = np.asarray(split_indices["test"])
    test_images, test_masks = images[test], masks[test]
    n_point = _point_samples(evaluation, kind)
    torch.manual_seed(evaluation["seed"])  # sampling architectures: the same completions on every rerun
    draws = complete_draws(net, test_images, test_masks, n_point, evaluation["seed"], evaluation["batch_size"], device)
    if draws is not None and net.samples_when_inpainting:  # its one sample is the first of the point's draws
        outputs, ms = draws.first, draws.ms_per_image
    else:
        outputs, ms = complete_images(net.inpaint, test_images, test_masks, evaluation["batch_size"], device)
    points = None if draws is None else draws.point
    perceptual = PerceptualMetrics(
        lpips=evaluation["lpips"], fid=evaluation["fid"], lpips_net=evaluation["lpips_net"], device=str(device)
    )
    scores = score_completions(test_images, test_masks, outputs, perceptual, ms, point_outputs=points)
    results = {"method": checkpoint.arch, **scores}
    extra = architecture_metrics(net, test_images, test_masks, evaluation["batch_size"], device)
    results["metrics"].update({f"test_{name}": value for name, value in extra.items()})
    logger.info(
        "%s test: %s",
        checkpoint.arch,
        {k: round(v, 4) for k, v in results["metrics"].items() if v is not None and "_area_" not in k},
    )
    n = evaluation["grid_images"]
    samples = complete_samples(net, test_images[:n], test_masks[:n], evaluation["samples_per_image"], device)
    grid = sample_grid(test_images[:n], test_masks[:n], samples if len(samples) > 1 else samples[0], n=n)
    history = pd.DataFrame(checkpoint.history)
    losses = [c for c in history.columns if c != "seconds" and not higher_is_better(c)]
    return results, grid, loss_curve(history[losses])


def _point_samples(evaluation: dict[str, Any], kind: str) -> int:
    """`evaluation.point_samples` for architecture `kind`, checked: the samples averaged into a sampling
    architecture's point estimate. One count for every architecture, or a mapping of architecture → count with a
    `default` for the others (a fast sampler can afford more draws than a slow one in the same evaluation time)."""
    n, key = evaluation.get("point_samples"), "evaluation.point_samples"
    if isinstance(n, Mapping):
        unknown = sorted(set(n) - {"default", *ARCHITECTURES})
        require(not unknown, key, f"names no architecture {unknown}; known: default, {', '.join(ARCHITECTURES)}")
        for name, count in n.items():
            _require_count(count, f"{key}.{name}")
        require(kind in n or "default" in n, key, f"gives no count for {kind!r} and no default")
        return n.get(kind, n.get("default"))
    return _require_count(n, key)


def _require_count(n: object, key: str) -> int:
    require(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1,
        key,
        f"expected an integer of at least 1 (samples averaged into the point-estimate completion), got {n!r}",
    )
    return n
