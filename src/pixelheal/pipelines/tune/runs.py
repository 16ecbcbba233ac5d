"""One MLflow child run per Optuna trial, under the `kedro run`'s run (kedro-mlflow's), as each architecture has.

A trial's run holds its sampled hyper-parameters (by path, `training.lr`) and trial number, every
epoch's metrics (`step` = epoch) and the trial's value; its end state is the tag
`optuna.trial_state` and the run status: a completed trial FINISHED, a pruned one KILLED (stopped
early, on purpose), a failed one FAILED with the error as the `pixelheal.error` tag. Runs carry the
process tags, so a worker killed mid-trial leaves a run the next start marks KILLED.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import mlflow
import optuna
from mlflow.entities import Metric, Param, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from optuna.trial import FrozenTrial, TrialState

from pixelheal.tracking import ERROR_TAG, FAILED, KILLED, MAX_TAG, OPEN_RUNS, process_tags

STATE_TAG = "optuna.trial_state"
RUN_STATUS = {
    TrialState.COMPLETE: RunStatus.to_string(RunStatus.FINISHED),
    TrialState.PRUNED: KILLED,
    TrialState.FAIL: FAILED,
}


class TrialRuns:
    """The child runs of one worker's trials; `start` opens one, the instance itself is the study callback closing it."""

    def __init__(self, parent: mlflow.ActiveRun, architecture: str, study_name: str) -> None:
        self._client = mlflow.MlflowClient()
        self._parent = parent
        self._tags = {"architecture": architecture, "optuna.study": study_name}
        self._runs: dict[int, str] = {}

    @classmethod
    def under_active_run(cls, architecture: str, study_name: str) -> TrialRuns | None:
        """Child runs of the active MLflow run; None when this pipeline is not tracked."""
        parent = mlflow.active_run()
        return None if parent is None else cls(parent, architecture, study_name)

    def start(self, trial: optuna.Trial, values: dict[str, Any]) -> Callable[[dict[str, float]], None]:
        """Open the trial's run with its sampled `values`; the `on_epoch` callback that logs each epoch there."""
        tags = {MLFLOW_PARENT_RUN_ID: self._parent.info.run_id, "optuna.trial_number": str(trial.number)}
        run = self._client.create_run(
            self._parent.info.experiment_id,
            tags=self._tags | tags | process_tags(),
            run_name=f"{self._tags['architecture']}.trial_{trial.number}",
        )
        run_id = self._runs[trial.number] = run.info.run_id
        OPEN_RUNS.add(run_id)
        params = {**values, "trial_number": trial.number}
        self._client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])

        def log_epoch(record: dict[str, float]) -> None:
            now, step = int(time.time() * 1000), int(record["epoch"])
            metrics = [Metric(k, float(v), now, step) for k, v in record.items() if k != "epoch"]
            self._client.log_batch(run_id, metrics=metrics)

        return log_epoch

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Close the run of `trial` (told, so its state is final) with that state."""
        run_id = self._runs.pop(trial.number, None)
        if run_id is None:  # the trial failed before its run was opened
            return
        self._client.set_tag(run_id, STATE_TAG, trial.state.name)
        if trial.value is not None:  # a pruned trial's: its last reported epoch's
            self._client.log_metric(run_id, "trial_value", trial.value)
        if "fail_reason" in trial.user_attrs:
            self._client.set_tag(run_id, ERROR_TAG, trial.user_attrs["fail_reason"][:MAX_TAG])
        self._client.set_terminated(run_id, RUN_STATUS[trial.state])
        OPEN_RUNS.discard(run_id)
