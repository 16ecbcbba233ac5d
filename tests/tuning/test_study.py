"""Studies as declared in parameters: sampler, pruner, storage, the trial loop's total, and the plots."""

from __future__ import annotations

import json
import subprocess
import sys

import matplotlib
import optuna
import pytest
from matplotlib.figure import Figure
from optuna.trial import TrialState

from pixelheal.config import parse
from pixelheal.tuning import (
    StudyConfig,
    best_trial,
    history_figure,
    importance_figure,
    open_study,
    report_epochs,
    run_trials,
    suggest,
)
from tests.conftest import PROJECT_ROOT

SPACE = {"training": {"lr": {"kind": "log_float", "low": 1e-4, "high": 1e-1}}}


def _config(tmp_path, **overrides) -> StudyConfig:
    block = {"space": SPACE, "storage": f"sqlite:///{tmp_path / 'studies' / 'optuna.db'}", **overrides}
    return parse(StudyConfig, block, "tune.unet_frm")


class Diverged(ValueError):
    """Stands in for a training run that diverged."""


@pytest.mark.parametrize(
    "overrides, problem",
    [
        ({"n_trials": 0}, r"^tune\.unet_frm\.n_trials: must be at least 1, got 0"),
        ({"sampler": {"kind": "grid"}}, r"^tune\.unet_frm\.sampler\.kind: unknown sampler 'grid'; valid: \['tpe'"),
        ({"pruner": {"kind": "median", "warmup": 1}}, r"^tune\.unet_frm\.pruner\.warmup: unknown parameter"),
        ({"pruner": {"kind": "percentile", "percentile": 101}}, r"^tune\.unet_frm\.pruner\.percentile: must be in"),
        ({"space": {"training": {"lr": {"kind": "x"}}}}, r"^tune\.unet_frm\.space\.training\.lr\.kind: unknown distr"),
        ({"storage": 3}, r"^tune\.unet_frm\.storage: expected a string"),
    ],
)
def test_an_invalid_study_block_names_the_key(tmp_path, overrides, problem):
    with pytest.raises(ValueError, match=problem):
        _config(tmp_path, **overrides)


def test_a_study_is_created_in_its_sqlite_folder_and_keeps_its_direction(tmp_path):
    config = _config(tmp_path)
    study = open_study(config, "unet_frm", "maximize", "tune.unet_frm")
    assert (tmp_path / "studies" / "optuna.db").is_file()
    assert open_study(config, "unet_frm", "maximize", "tune.unet_frm").study_name == study.study_name
    with pytest.raises(
        ValueError, match=r"^tune\.unet_frm\.study_name: study 'unet_frm' .* made to maximize, not mini"
    ):
        open_study(config, "unet_frm", "minimize", "tune.unet_frm")


def test_a_storage_that_cannot_be_opened_is_one_line_naming_it(tmp_path):
    config = _config(tmp_path, storage="nosuchdb://somewhere/optuna")
    with pytest.raises(ValueError, match=r"^tune\.unet_frm\.storage: cannot open the Optuna storage 'nosuchdb://"):
        open_study(config, "unet_frm", "maximize", "tune.unet_frm")


def test_n_trials_is_the_studys_total(tmp_path):
    config = _config(tmp_path, n_trials=3)
    study = open_study(config, "unet_frm", "minimize", "tune.unet_frm")
    space = config.distributions()

    def objective(trial):
        return suggest(trial, space)["training.lr"]

    assert len(run_trials(study, objective, 2, config.storage)) == 2
    assert [t.number for t in run_trials(study, objective, config.n_trials, config.storage)] == [2]  # one more
    assert run_trials(study, objective, config.n_trials, config.storage) == []  # the study is complete


def test_caught_failures_go_on_other_errors_stop_and_callbacks_see_every_trial(tmp_path):
    config = _config(tmp_path, n_trials=4)
    study = open_study(config, "unet_frm", "minimize", "tune.unet_frm")
    seen = []

    def objective(trial):
        if trial.number == 0:
            raise Diverged("unet_frm.training: the loss is not finite at epoch 1")
        if trial.number == 2:
            raise RuntimeError("a bug")
        return 1.0

    with pytest.raises(RuntimeError, match="a bug"):
        run_trials(study, objective, 4, config.storage, catch=(Diverged,), callbacks=[lambda s, t: seen.append(t)])
    assert [(t.number, t.state) for t in seen] == [(0, TrialState.FAIL), (1, TrialState.COMPLETE), (2, TrialState.FAIL)]
    assert seen[0].user_attrs["fail_reason"] == "Diverged: unet_frm.training: the loss is not finite at epoch 1"
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.FAIL]


@pytest.mark.parametrize("direction, key", [("maximize", "val_psnr"), ("minimize", "val_nll_bpd")])
def test_the_pruner_stops_a_trial_that_lags_in_the_studys_direction(tmp_path, direction, key):
    pruner = {"kind": "percentile", "percentile": 1.0, "n_startup_trials": 1}
    config = _config(tmp_path, n_trials=3, pruner=pruner)
    study = open_study(config, "study", direction, "tune.x")
    good, bad = (20.0, 10.0) if direction == "maximize" else (3.0, 6.0)  # bits/dim: lower is better
    epochs = iter([[good, good], [bad, bad], [good + (1 if direction == "maximize" else -1)] * 2])

    def objective(trial):
        report = report_epochs(trial, key)
        values = next(epochs)
        for epoch, value in enumerate(values, 1):
            report({"epoch": epoch, key: value, "train_loss": 1.0})
        return values[-1]

    finished = run_trials(study, objective, config.n_trials, config.storage)
    assert [t.state for t in finished] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE]
    assert finished[1].intermediate_values == {1: bad}  # stopped after its first epoch
    assert best_trial(study, "tune.x").number == 2


def test_a_study_without_a_completed_trial_has_no_best(tmp_path):
    config = _config(tmp_path, n_trials=2)
    study = open_study(config, "study", "maximize", "tune.unet_frm")

    def objective(trial):
        raise optuna.TrialPruned("pruned after epoch 1")

    run_trials(study, objective, config.n_trials, config.storage)
    with pytest.raises(ValueError, match=r"^tune\.unet_frm: no trial of study 'study' completed \(2 pruned\); loosen"):
        best_trial(study, "tune.unet_frm")


def test_the_plots_are_figures_and_leave_the_global_style_alone(tmp_path):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space = _config(tmp_path).distributions()
    study.optimize(lambda trial: suggest(trial, space)["training.lr"], n_trials=1)
    style = dict(matplotlib.rcParams)
    assert isinstance(history_figure(study), Figure)
    placeholder = importance_figure(study)  # one completed trial: nothing to rank yet
    assert "need 2 completed trials" in placeholder.texts[0].get_text()
    study.optimize(lambda trial: suggest(trial, space)["training.lr"], n_trials=2)
    ranked = importance_figure(study)
    assert not ranked.texts and [t.get_text() for t in ranked.axes[0].get_yticklabels()] == ["training.lr"]
    assert dict(matplotlib.rcParams) == style


@pytest.mark.slow  # two real processes, each importing Optuna
def test_two_processes_sharing_one_sqlite_study_run_its_trials_once_in_total(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    command = [sys.executable, "-m", "tests.tuning.worker", storage, "4"]
    workers = [subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    ran = []
    for worker in workers:
        out, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0
        ran.append(json.loads(out.strip().splitlines()[-1]))
    assert all(ran), ran  # both workers took part
    assert sorted(ran[0] + ran[1]) == [0, 1, 2, 3]  # four trials in total, no number twice
    study = optuna.load_study(study_name="shared", storage=storage)
    assert [(t.number, t.state) for t in study.trials] == [(n, TrialState.COMPLETE) for n in range(4)]
    assert len({t.params["training.lr"] for t in study.trials}) == 4  # one seed, yet no worker repeats the other
