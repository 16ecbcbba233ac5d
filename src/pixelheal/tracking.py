"""MLflow runs that never report a failure as a success: kedro-mlflow's hook with this project's failure handling.

A failed run ends FAILED with its one line as the `pixelheal.error` tag; a run whose process was
killed is marked KILLED at the next start (runs carry the pid and host that opened them); an
interrupted one is KILLED at exit; a tracking store that cannot be opened stops a tracked run in
one line, while pipelines that do not track run without it.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node, Pipeline
from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook
from kedro_mlflow.framework.hooks.utils import _assert_mlflow_enabled
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)

ERROR_TAG = "pixelheal.error"  # the one line a failed run ended with
PID_TAG, HOST_TAG = "pixelheal.pid", "pixelheal.host"  # the process that opened the run
MAX_TAG = 5000  # characters of a message kept in a tag
FAILED, KILLED = RunStatus.to_string(RunStatus.FAILED), RunStatus.to_string(RunStatus.KILLED)


class TrackingStoreError(SystemExit):
    """The MLflow tracking store cannot be opened; exits with one line naming it."""


def user_error(error: Exception) -> bool:
    """Whether `error` ends the run in one line (PIXELHEAL_TRACEBACK=1 keeps every traceback)."""
    return isinstance(error, (ValueError, FileNotFoundError)) and not os.environ.get("PIXELHEAL_TRACEBACK")


def failure_line(error: Exception, node: Node) -> str:
    """The line a node's error is reported (and tagged in MLflow) with."""
    if user_error(error):
        return f"{node.name} failed: {error}"
    lines = str(error).strip().splitlines()
    return f"{node.name} failed: {type(error).__name__}" + (f": {lines[0]}" if lines else "")


def process_tags() -> dict[str, str]:
    """The tags that tell whose process a run is (see `mark_killed_runs`)."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    """Whether process `pid` exists; assumed so on Windows, where `os.kill(pid, 0)` would end it."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def mark_killed_runs(client: mlflow.MlflowClient, experiment_id: str) -> list[str]:
    """Mark KILLED the runs left RUNNING by a process of this host that no longer exists; their ids.

    A killed `kedro run` cannot close its runs. Runs of live processes, of other hosts and without
    the process tags are left alone (a reused pid keeps a run RUNNING, never marks a live one).
    """
    host = socket.gethostname()
    running = client.search_runs(
        [experiment_id], filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"
    )
    killed = []
    for run in running:
        pid = run.data.tags.get(PID_TAG, "")
        if not pid.isdigit() or int(pid) == 0 or _alive(int(pid)):
            continue
        client.set_tag(run.info.run_id, ERROR_TAG, f"process {pid} on {host} ended without closing the run")
        client.set_terminated(run.info.run_id, KILLED)
        killed.append(run.info.run_id)
    if killed:
        logger.warning("marked %d MLflow run(s) of killed processes as KILLED: %s", len(killed), ", ".join(killed))
    return killed


def end_runs(run_id: str, status: str, message: str) -> None:
    """Tag `run_id` with `message` and end it, and every run active in this thread, with `status`.

    kedro-mlflow restarts its run before each node, so it can be on MLflow's active stack twice:
    one `end_run` would leave it for MLflow's exit handler, which records FINISHED.
    """
    mlflow.MlflowClient().set_tag(run_id, ERROR_TAG, message[:MAX_TAG])
    while mlflow.active_run() is not None:
        mlflow.end_run(status)
    mlflow.MlflowClient().set_terminated(run_id, status)


OPEN_RUNS: set[str] = set()  # runs this process opened (kedro-mlflow's and the children) and has not closed


@atexit.register  # registered after MLflow's own exit handler (mlflow is imported above), so it runs first
def _end_interrupted_runs() -> None:
    """A run still open at exit was interrupted (Ctrl-C): KILLED, not the FINISHED MLflow would record."""
    for run_id in sorted(OPEN_RUNS):
        if mlflow.MlflowClient().get_run(run_id).info.status != "RUNNING":
            continue  # already ended by a hook that stopped the run (e.g. a lineage check), with its reason
        end_runs(run_id, KILLED, "interrupted: the process exited before the run completed")
    OPEN_RUNS.clear()


def _store_problem(uri: str, error: Exception) -> str:
    """One line naming the tracking store at `uri` that could not be opened, why, and what to do."""
    store = str(Path(uri.removeprefix("sqlite:///")).resolve()) if uri.startswith("sqlite:///") else uri
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    remedy = (
        "another process holds it: wait for that process or stop it"
        if "locked" in reason
        else "move the file aside (a new store is created) or set server.mlflow_tracking_uri in mlflow.yml"
    )
    untracked = "pipelines that do not track (inpaint) still run"
    return f"MLflow tracking store {store} cannot be used ({reason}): {remedy}; {untracked}"


class TrackingHooks(MlflowHook):
    """kedro-mlflow's hook (one MLflow run per `kedro run`), registered in settings.py in place of the plugin's.

    Added: a node's error tags the run `pixelheal.error`, and a user error (which exits before
    kedro-mlflow's `on_pipeline_error`) ends it FAILED; runs are tagged with their process, so the
    next start marks the runs of killed processes KILLED; a store that cannot be opened stops a
    tracked run with one line, while pipelines that do not track run without it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._store_error: str | None = None
        self._failure: str | None = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._store_error = None
        try:
            super().after_context_created(context)
        except (SQLAlchemyError, MlflowException) as error:  # a corrupt or locked SQLite file, a bad URI
            self.mlflow_config = KedroMlflowConfig.model_validate({**context.config_loader["mlflow"]})
            # as kedro-mlflow resolves it (it fails before setting MLflow's tracking URI)
            uri = self.mlflow_config.server.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "mlruns")
            self._store_error = _store_problem(uri, error)
            logger.warning(self._store_error)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        self._failure = None
        tracked = _assert_mlflow_enabled(run_params.get("pipeline_names") or ["__default__"], self.mlflow_config)
        if tracked and self._store_error:
            raise TrackingStoreError(self._store_error)
        if tracked:
            experiment = mlflow.get_experiment_by_name(self.mlflow_config.tracking.experiment.name)
            mark_killed_runs(mlflow.MlflowClient(), experiment.experiment_id)
        super().before_pipeline_run(run_params, pipeline, catalog)
        if tracked:
            mlflow.set_tags(process_tags())
            OPEN_RUNS.add(self.run_id)

    @hook_impl
    def on_node_error(self, error: Exception, node: Node) -> None:
        if not self._is_mlflow_enabled or self.run_id not in OPEN_RUNS:
            return
        self._failure = failure_line(error, node)
        if user_error(error):  # UserErrorHooks exits: Kedro calls no on_pipeline_error
            OPEN_RUNS.discard(self.run_id)
            end_runs(self.run_id, FAILED, self._failure)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        if self._is_mlflow_enabled and self.run_id in OPEN_RUNS:
            message = self._failure or f"{type(error).__name__}: {error}"
            mlflow.MlflowClient().set_tag(self.run_id, ERROR_TAG, message[:MAX_TAG])
        OPEN_RUNS.discard(self.run_id)
        super().on_pipeline_error(error, run_params, pipeline, catalog)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        OPEN_RUNS.discard(self.run_id)
        super().after_pipeline_run(run_params, pipeline, catalog)
