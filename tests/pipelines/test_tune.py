"""`kedro run --pipeline=tune_unet_frm` through the real CLI: trials as MLflow child runs, best parameters that reproduce."""

from __future__ import annotations

import shutil

import optuna
import pytest
import yaml
from mlflow import MlflowClient
from optuna.trial import TrialState

from pixelheal.models.checkpoint import read_checkpoint
from tests.pipelines.kedro_project import kedro, make_project

pytestmark = pytest.mark.slow

# Percentile 1 after one finished trial: a trial is pruned unless its epoch beats every finished one's.
AGGRESSIVE = (
    "tune.unet_frm.pruner.kind=percentile,tune.unet_frm.pruner.percentile=1.0,tune.unet_frm.pruner.n_startup_trials=1"
)
STORAGE = "data/07_model_output/optuna.db"  # conf/base's default, inside the project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny project whose data was made and whose unet_frm study ran 4 trials, in one `kedro run`."""
    root = make_project(tmp_path_factory.mktemp("project"))
    pipelines = "--pipelines=data_processing,masks,split,tune_unet_frm"
    result = kedro(root, "run", "--env=tiny", pipelines, f"--params=tune.unet_frm.n_trials=4,{AGGRESSIVE}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list((root / "data" / "06_models").glob("unet_frm*"))  # no checkpoint, no resume state: train's
    return root


def _study(root) -> optuna.Study:
    return optuna.load_study(study_name="unet_frm", storage=f"sqlite:///{root / STORAGE}")


def _runs(root):
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "pixelheal"]
    return client, client.search_runs([experiment.experiment_id])


def test_each_trial_is_a_child_run_with_its_params_epochs_and_state(project):
    study = _study(project)
    states = [t.state for t in study.trials]
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    client, runs = _runs(project)
    trials = {int(r.data.tags["optuna.trial_number"]): r for r in runs if "optuna.trial_number" in r.data.tags}
    assert sorted(trials) == [0, 1, 2, 3]
    (parent,) = {r.data.tags["mlflow.parentRunId"] for r in trials.values()}
    status = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED"}
    for trial in study.trials:
        run = trials[trial.number]
        assert (run.info.status, run.data.tags["optuna.trial_state"]) == (status[trial.state], trial.state.name)
        assert run.data.params["training.lr"] == str(trial.params["training.lr"])
        assert run.data.metrics["trial_value"] == trial.value
        epochs = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val_psnr")}
        assert epochs == trial.intermediate_values  # what the pruner saw, epoch by epoch
    artifacts = {a.path for a in client.list_artifacts(parent)}
    assert {"unet_frm_best_params.yml", "tune_history.png", "tune_importance.png"} <= artifacts


def test_training_with_the_best_params_in_conf_local_reproduces_the_best_trial(project):
    best_params = project / "data" / "08_reporting" / "unet_frm_best_params.yml"
    study = _study(project)
    tuned = yaml.safe_load(best_params.read_text())["unet_frm"]
    assert tuned["training"]["lr"] == study.best_params["training.lr"]
    assert tuned["model"]["hole_weight"] == study.best_params["model.hole_weight"]
    shutil.copy(best_params, project / "conf" / "local" / "parameters_tuned.yml")
    result = kedro(project, "run", "--pipeline=train_unet_frm")  # conf/base + conf/local
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = read_checkpoint(project / "data" / "06_models" / "unet_frm.pt")
    assert checkpoint.metrics["val_psnr"] == study.best_value  # same seed, same blocks: the same model
