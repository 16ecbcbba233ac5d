"""Nodes of the tune_<arch> template: an Optuna study whose trials train through the train pipeline's node.

Each trial trains a copy of `<arch>.model` / `<arch>.training` with its sampled values substituted,
via `train_model` with its own scratch resume state, reporting the per-epoch validation metric
(`training.select_on`) to the pruner. Nothing of the train pipeline's is written: no checkpoint,
no resume state in data/06_models. The result is the best trial's blocks, shaped as parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
import optuna
from matplotlib.figure import Figure

from pixelheal.config import ConfigError, parse
from pixelheal.data.scratch import scratch_file
from pixelheal.evaluation.registry import higher_is_better
from pixelheal.pipelines.train.nodes import train_model, training_parameters
from pixelheal.pipelines.tune.runs import TrialRuns
from pixelheal.training.guards import DivergedError
from pixelheal.tuning import (
    StudyConfig,
    best_trial,
    decode,
    history_figure,
    importance_figure,
    open_study,
    report_epochs,
    run_trials,
    substitute,
    suggest,
)

logger = logging.getLogger(__name__)

SECTIONS = ("model", "training")  # the blocks of `<arch>` a space path may start with
FIXED = {  # paths a trial may not vary, and why
    "model.kind": "the architecture is the pipeline's",
    "training.select_on": "it is the metric the study optimises",
    "training.resume": "every trial trains from the start",
    "training.state_path": "every trial keeps its own scratch resume state",
}


def study_config(block: Any, where: str) -> StudyConfig:
    """A `tune.<arch>` block checked once; every error names `<where>.<key>` (e.g. `tune.gan.space.training.lr`)."""
    config = parse(StudyConfig, block, where)
    for path in config.distributions():
        reason = FIXED.get(path) or (None if path.split(".")[0] in SECTIONS else f"paths start with {list(SECTIONS)}")
        if reason:
            raise ValueError(f"{where}.space.{path}: cannot be tuned: {reason}")
    return config


def check_tune_block(
    block: Any, where: str, *, arch: str, params: Mapping[str, Any], checks: Mapping[str, Callable[[Any, str], object]]
) -> None:
    """A `tune.<arch>` block, and every value its space can give, through the checks of `<arch>.model` / `.training`.

    A range is checked at both ends, a categorical at every choice: an invalid path or value stops
    the run before its first trial, naming `<where>.space.<path>`.
    """
    config = study_config(block, where)
    for path, distribution in config.distributions().items():
        section = path.split(".")[0]
        for value in distribution.candidates():
            name = f"{arch}.{section}"
            try:
                checks[name](substitute(params.get(arch, {}), {path: value})[section], name)
            except ValueError as error:
                detail = error.detail if isinstance(error, ConfigError) else str(error).removeprefix(f"{arch}.{path}: ")
                raise ValueError(f"{where}.space.{path}: {value!r} is refused: {detail}") from None


def _direction(select_on: str) -> str:
    return "maximize" if higher_is_better(select_on) else "minimize"


def _train_trial(
    trial: optuna.Trial,
    data: tuple[np.ndarray, np.ndarray, dict[str, list[int]]],
    blocks: dict[str, Any],
    config: StudyConfig,
    select_on: str,
    runs: TrialRuns | None,
) -> float:
    """One trial: the configured blocks with its sampled values, trained by `train_model`; its best `select_on`.

    `data` is (images, masks, split_indices), as `train_model` takes them.
    """
    values = suggest(trial, config.distributions())
    trial_blocks = substitute(blocks, values | {"training.resume": False, "training.state_path": None})
    report = report_epochs(trial, select_on)
    log_epoch = runs.start(trial, values) if runs else None
    state = scratch_file("tune_state", ".pt")  # never the train pipeline's data/06_models/<arch>.state.pt

    def on_epoch(record: dict[str, float]) -> None:
        if log_epoch is not None:
            log_epoch(record)
        report(record)

    try:
        checkpoint, _ = train_model(*data, trial_blocks["model"], trial_blocks["training"], state, on_epoch=on_epoch)
    finally:
        state.unlink(missing_ok=True)
    return float(checkpoint.metrics[select_on])


def tune_architecture(
    images: np.ndarray,
    masks: np.ndarray,
    split_indices: dict[str, list[int]],
    study: dict[str, Any],
    model: dict[str, Any],
    training: dict[str, Any],
) -> tuple[dict[str, Any], Figure, Figure]:
    """Run the `tune.<arch>` study; the best trial's `{<arch>: {model, training}}` blocks, history and importances.

    The blocks are the configured ones with the best trial's values: copied into conf/local/ (or
    given back as runtime parameters) they train what the best trial trained.
    """
    kind = model["kind"]
    where = f"tune.{kind}"
    config = study_config(study, where)
    select_on = training_parameters(training, f"{kind}.training").select_on
    name = config.study_name or kind
    optuna_study = open_study(config, name, _direction(select_on), where)
    runs = TrialRuns.under_active_run(kind, name)
    blocks = {"model": model, "training": training}
    data = (images, masks, split_indices)
    objective = partial(_train_trial, data=data, blocks=blocks, config=config, select_on=select_on, runs=runs)
    callbacks = [runs] if runs else []
    run_trials(optuna_study, objective, config.n_trials, config.storage, catch=(DivergedError,), callbacks=callbacks)
    best = best_trial(optuna_study, where)
    logger.info("%s: best trial %d with %s=%.4g: %s", where, best.number, select_on, best.value, best.params)
    tuned = substitute(blocks, decode(best.params, config.distributions()))
    return {kind: tuned}, history_figure(optuna_study), importance_figure(optuna_study)
