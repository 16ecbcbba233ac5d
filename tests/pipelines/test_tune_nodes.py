"""The tune_<arch> node in-process: trials train through the train node; its best blocks are parameters again."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from kedro_datasets.yaml import YAMLDataset
from optuna.trial import TrialState

from pixelheal.config_loader import ProjectConfigLoader
from pixelheal.pipelines.parameters import check_parameters, check_runtime_parameters
from pixelheal.pipelines.train.nodes import train_model
from pixelheal.pipelines.tune.nodes import tune_architecture
from tests.conftest import PROJECT_ROOT, environment_parameters

BASE = environment_parameters("base")
# A likelihood model: its study minimises val_nll_bpd.
MODEL = BASE["pixelcnn"]["model"] | {"hidden": 8, "n_blocks": 1, "cond_layers": 1}
TRAINING = BASE["pixelcnn"]["training"] | {"epochs": 1, "batch_size": 16, "device": "cpu", "optimizer": "sgd"}
SPLITS = {"train": list(range(32)), "val": list(range(32, 40)), "test": list(range(40, 48))}
DIVERGING_LR = 1e30  # sgd at this rate: non-finite weights in the first epoch
SPACE = {
    "training": {"lr": {"kind": "categorical", "choices": [DIVERGING_LR, 0.003]}},
    "model": {"hidden": {"kind": "categorical", "choices": [8, 16]}},
}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """(data, storage, the node's outputs) of a 4-trial study, one of whose trials diverges."""
    rng = np.random.default_rng(0)
    data = (rng.integers(0, 256, (48, 3, 16, 16), dtype=np.uint8), (rng.random((48, 1, 16, 16)) < 0.3).astype(np.uint8))
    storage = f"sqlite:///{tmp_path_factory.mktemp('studies') / 'optuna.db'}"
    study = {"space": SPACE, "n_trials": 4, "sampler": {"kind": "random", "seed": 0}, "pruner": {"kind": "none"}}
    scratch = set(Path(tempfile.gettempdir()).glob(f"pixelheal-tune_state-*-{os.getpid()}-*"))
    outputs = tune_architecture(*data, SPLITS, study | {"storage": storage}, MODEL, TRAINING)
    assert set(Path(tempfile.gettempdir()).glob(f"pixelheal-tune_state-*-{os.getpid()}-*")) == scratch  # removed
    return data, storage, outputs


def test_a_diverged_trial_fails_alone_and_the_best_blocks_train_to_the_best_value(tuned):
    data, storage, (best, history, importance) = tuned
    study = optuna.load_study(study_name="pixelcnn", storage=storage)
    states = {t.number: t.state for t in study.trials}
    assert sorted(states) == [0, 1, 2, 3] and TrialState.FAIL in states.values()
    failed = next(t for t in study.trials if t.state == TrialState.FAIL)
    assert failed.params["training.lr"] == DIVERGING_LR
    assert failed.user_attrs["fail_reason"].startswith("DivergedError: pixelcnn.training: training diverged in epoch 1")
    assert study.direction == optuna.study.StudyDirection.MINIMIZE  # bits/dim: lower is better
    assert sorted(best) == ["pixelcnn"] and sorted(best["pixelcnn"]) == ["model", "training"]
    tuned_model, tuned_training = best["pixelcnn"]["model"], best["pixelcnn"]["training"]
    assert tuned_training == TRAINING | {"lr": 0.003}
    assert tuned_model == MODEL | {"hidden": study.best_params["model.hidden"]}
    checkpoint, _ = train_model(*data, SPLITS, tuned_model, tuned_training, Path(tempfile.mkdtemp()) / "s.pt")
    assert checkpoint.metrics["val_nll_bpd"] == study.best_value  # same seed, same blocks: the same model
    assert history.axes and importance.axes


def test_the_best_blocks_copied_into_conf_local_or_given_at_run_time_are_what_a_run_reads(tuned, tmp_path):
    _, _, (best, _, _) = tuned
    shutil.copytree(PROJECT_ROOT / "conf" / "base", tmp_path / "base")
    (tmp_path / "local").mkdir()
    saved = YAMLDataset(filepath=str(tmp_path / "best_params.yml"))  # the catalog's dataset type
    saved.save(best)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        configured = ProjectConfigLoader(str(tmp_path), env="local", base_env="base")["parameters"]
        at_run_time = ProjectConfigLoader(str(tmp_path), env="local", base_env="base", runtime_params=saved.load())
        shutil.copy(tmp_path / "best_params.yml", tmp_path / "local" / "parameters_tuned.yml")
        from_local = ProjectConfigLoader(str(tmp_path), env="local", base_env="base")["parameters"]
    assert from_local["pixelcnn"] == best["pixelcnn"]
    assert at_run_time["parameters"]["pixelcnn"] == best["pixelcnn"]
    check_runtime_parameters(saved.load(), configured, at_run_time["parameters"])
    check_parameters(from_local, ["pixelcnn.model", "pixelcnn.training"])


@pytest.mark.parametrize(
    "change, problem",
    [
        (
            {"training": {"lrr": {"kind": "float", "low": 0.1, "high": 0.2}}},
            r"space\.training\.lrr: 0\.1 is refused: unk",
        ),
        ({"training": {"lr": {"kind": "float", "low": -1, "high": 1}}}, r"space\.training\.lr: -1\.0 is refused: must"),
        ({"model": {"widths": {"kind": "categorical", "choices": [[4]]}}}, r"space\.model\.widths: \[4\] is refused"),
        ({"training": {"lr": {"kind": "uniform", "low": 0, "high": 1}}}, r"space\.training\.lr\.kind: unknown distrib"),
        (
            {"training": {"select_on": {"kind": "categorical", "choices": ["val_loss"]}}},
            r"space\.training\.select_on: cannot be tuned",
        ),
        ({"evaluation": {"seed": {"kind": "int", "low": 0, "high": 2}}}, r"space\.evaluation\.seed: cannot be tuned"),
    ],
)
def test_an_invalid_space_stops_the_run_before_any_trial_naming_its_path(change, problem):
    params = copy.deepcopy(BASE)
    params["tune"]["unet_aspp"]["space"] = change
    with pytest.raises(ValueError, match=rf"^tune\.unet_aspp\.{problem}"):
        check_parameters(params, ["tune.unet_aspp", "unet_aspp.model", "unet_aspp.training"])
