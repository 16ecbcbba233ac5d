"""Project hooks: the pre-flight checks of a run, one-line user errors, MLflow runs (failed, killed, per architecture)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kedro.pipeline import Node, Pipeline

from pixelheal.hooks import (
    ArchitectureRunHooks,
    MissingInputsError,
    ParameterError,
    PreflightHooks,
    UserErrorHooks,
    UserInputError,
)
from pixelheal.tracking import (
    ERROR_TAG,
    HOST_TAG,
    OPEN_RUNS,
    PID_TAG,
    TrackingHooks,
    TrackingStoreError,
    mark_killed_runs,
)
from tests.conftest import PROJECT_ROOT
from tests.inference.helpers import tiny_checkpoint, write_checkpoint


def _identity(*args: Any) -> Any:
    return args[0]


RUN_PARAMS: dict[str, Any] = {"runtime_params": {}, "pipeline_names": ["train_unet_frm"]}


class FakeCatalog:
    """The catalog calls the hooks make: which datasets exist, parameter values, a dataset's file."""

    def __init__(
        self, existing: set[str], values: dict[str, Any] | None = None, files: dict[str, Path] | None = None
    ) -> None:
        self.existing, self.values, self.files = existing, values or {}, files or {}

    def exists(self, name: str) -> bool:
        return name in self.existing

    def load(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str) -> Any:
        return SimpleNamespace(_filepath=self.files.get(name))


def test_missing_inputs_stop_the_run_naming_the_pipeline_that_makes_them(monkeypatch):
    producer = Pipeline([Node(_identity, "raw", "images", name="prepare")])
    monkeypatch.setattr("kedro.framework.project.pipelines", {"data_processing": producer, "__default__": producer})
    consumer = Pipeline([Node(_identity, ["images", "params:seed"], "grid", name="draw")])
    with pytest.raises(MissingInputsError) as error:
        PreflightHooks().before_pipeline_run(
            RUN_PARAMS, consumer, FakeCatalog(existing=set(), values={"parameters": {"seed": 0}})
        )
    assert str(error.value) == "Missing input(s) images: run `kedro run --pipelines=data_processing` first."


def test_present_inputs_and_valid_parameters_let_the_run_start():
    pipeline = Pipeline([Node(_identity, ["images", "params:unet_frm.training"], "out", name="train")])
    catalog = FakeCatalog(existing={"images"}, values={"parameters": {"unet_frm": {"training": {"epochs": 2}}}})
    PreflightHooks().before_pipeline_run(RUN_PARAMS, pipeline, catalog)


@pytest.mark.parametrize(
    "training, problem",
    [
        ({"epoch": 2}, "unet_frm.training.epoch: unknown parameter; valid: ['epochs', "),
        ({"epochs": "abc"}, "unet_frm.training.epochs: expected an integer, got 'abc'"),
    ],
)
def test_an_invalid_training_parameter_stops_the_run_before_any_node(training, problem):
    pipeline = Pipeline([Node(_identity, ["images", "params:unet_frm.training"], "out", name="train")])
    catalog = FakeCatalog(existing=set(), values={"parameters": {"unet_frm": {"training": training}}})  # before inputs
    with pytest.raises(ParameterError) as error:
        PreflightHooks().before_pipeline_run(RUN_PARAMS, pipeline, catalog)
    assert str(error.value).startswith(problem) and "\n" not in str(error.value)


def test_user_errors_become_one_line_and_others_keep_their_traceback(monkeypatch):
    node = Node(_identity, "a", "b", name="unet_frm.train")
    monkeypatch.delenv("PIXELHEAL_TRACEBACK", raising=False)
    with pytest.raises(UserInputError, match=r"^unet_frm\.train failed: images_dir: x is not a folder$"):
        UserErrorHooks().on_node_error(ValueError("images_dir: x is not a folder"), node)
    UserErrorHooks().on_node_error(RuntimeError("a bug"), node)  # not a user error: Kedro shows the traceback
    monkeypatch.setenv("PIXELHEAL_TRACEBACK", "1")
    UserErrorHooks().on_node_error(ValueError("kept"), node)


@pytest.fixture
def tracking(tmp_path):
    """A local SQLite MLflow store with a parent run open, as kedro-mlflow opens one per `kedro run`."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("pixelheal", artifact_location=(tmp_path / "mlruns").as_uri())
    parent = mlflow.start_run(experiment_id=experiment)
    yield mlflow.MlflowClient(), parent.info.run_id
    mlflow.end_run()
    mlflow.set_tracking_uri(previous)


PARAMS = {
    "unet_frm": {"model": {"kind": "unet_frm", "widths": [4, 8]}, "training": {"epochs": 1}},
    "evaluation": {"batch_size": 64},
    "data_processing": {"source": {"kind": "sample"}},
    "masks": {"generator": {"kind": "irregular"}},
}


@pytest.mark.slow  # creating an MLflow SQLite store runs its migrations (a few seconds)
def test_each_architecture_logs_to_its_own_child_run(tmp_path, tracking):
    import mlflow

    client, parent_id = tracking
    checkpoint_file = write_checkpoint(tmp_path / "unet_frm.pt")
    hooks = ArchitectureRunHooks()
    hooks.after_context_created(SimpleNamespace(params=PARAMS))
    hooks.before_pipeline_run(FakeCatalog(set(), files={"unet_frm.checkpoint": checkpoint_file}))
    train = Node(_identity, "images", "checkpoint", name="train", namespace="unet_frm")
    history = [{"epoch": 1, "train_loss": 0.5, "val_psnr": 11.0}, {"epoch": 2, "train_loss": 0.25, "val_psnr": 12.0}]
    checkpoint = dataclasses.replace(tiny_checkpoint(), history=history, epoch=2)
    hooks.before_node_run(train)
    hooks.after_node_run(train, {"unet_frm.checkpoint": checkpoint})
    hooks.after_dataset_saved("unet_frm.checkpoint", train)
    evaluate = Node(_identity, "checkpoint", "metrics", name="evaluate", namespace="unet_frm")
    hooks.before_node_run(evaluate)
    hooks.after_node_run(
        evaluate,
        {
            "unet_frm.metrics": {
                "metrics": {"test_psnr": 20.0, "test_fid": None},
                "unavailable": {"test_fid": "disabled"},
            }
        },
    )
    hooks.after_pipeline_run()

    (child,) = [
        run
        for run in client.search_runs([client.get_run(parent_id).info.experiment_id])
        if run.info.run_id != parent_id
    ]
    assert child.info.run_name == "unet_frm" and child.info.status == "FINISHED"
    assert {k: child.data.tags[k] for k in ("mlflow.parentRunId", "architecture", "dataset", "mask_generator")} == {
        "mlflow.parentRunId": parent_id,
        "architecture": "unet_frm",
        "dataset": "sample",
        "mask_generator": "irregular",
    }
    assert child.data.tags["unavailable.test_fid"] == "disabled"
    assert child.data.params["model.widths"] == "[4, 8]" and child.data.params["evaluation.batch_size"] == "64"
    val_psnr = client.get_metric_history(child.info.run_id, "val_psnr")
    assert [(m.step, m.value) for m in val_psnr] == [(1, 11.0), (2, 12.0)]
    assert child.data.metrics["best_epoch"] == 2 and child.data.metrics["test_psnr"] == 20.0
    assert "test_fid" not in child.data.metrics
    assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["unet_frm.pt"]
    # The checkpoint is also the run's MLflow model, a new version of the registered pixelheal-unet_frm.
    (version,) = client.search_model_versions("name = 'pixelheal-unet_frm'")
    assert (version.version, version.run_id) == (1, child.info.run_id)
    assert version.tags == {
        "architecture": "unet_frm",
        "git_commit": child.data.tags["git_commit"],
        "kedro_run_id": parent_id,
    }
    assert child.info.run_id in version.description and child.data.tags["git_commit"] in version.description
    assert mlflow.active_run().info.run_id == parent_id  # logging into the child left the parent active


def test_a_run_without_tracking_logs_and_registers_nothing(tmp_path):
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    hooks = ArchitectureRunHooks()
    try:
        hooks.after_context_created(SimpleNamespace(params=PARAMS))
        checkpoint = write_checkpoint(tmp_path / "unet_frm.pt")
        hooks.before_pipeline_run(FakeCatalog(set(), files={"unet_frm.checkpoint": checkpoint}))
        train = Node(_identity, "images", "checkpoint", name="train", namespace="unet_frm")
        hooks.before_node_run(train)  # no active run: tracking is disabled for this pipeline
        hooks.after_node_run(train, {"unet_frm.checkpoint": tiny_checkpoint()})
        hooks.after_dataset_saved("unet_frm.checkpoint", train)
        hooks.after_pipeline_run()
    finally:
        mlflow.set_tracking_uri(previous)
    assert hooks._runs == {} and not (tmp_path / "mlflow.db").exists()  # no store was opened, no model registered


def test_nodes_outside_an_architecture_namespace_log_nothing():
    hooks = ArchitectureRunHooks()
    hooks.after_context_created(SimpleNamespace(params=PARAMS))
    hooks.before_pipeline_run(FakeCatalog(set()))
    compare = Node(_identity, "a", "b", name="compare")
    hooks.before_node_run(compare)
    hooks.after_node_run(compare, {"b": 1})  # no MLflow run is opened
    assert hooks._runs == {}


class FakeLoader:
    """The config loader call PreflightHooks makes: the parameters of conf/ without the runtime ones."""

    def __init__(self, configured: dict[str, Any]) -> None:
        self.configured = configured

    def configured_parameters(self) -> dict[str, Any]:
        return self.configured


def test_an_unknown_runtime_parameter_stops_the_run_before_any_node():
    configured = {"unet_frm": {"model": {"kind": "unet_frm"}, "training": {"epochs": 2}}}
    runtime = {"nosuchns": {"training": {"epochs": 1}}}
    hooks = PreflightHooks()
    hooks.after_context_created(SimpleNamespace(config_loader=FakeLoader(configured)))
    pipeline = Pipeline([Node(_identity, ["images", "params:unet_frm.training"], "out", name="train")])
    catalog = FakeCatalog(existing={"images"}, values={"parameters": {**configured, **runtime}})
    with pytest.raises(ParameterError) as error:
        hooks.before_pipeline_run({**RUN_PARAMS, "runtime_params": runtime}, pipeline, catalog)
    assert str(error.value) == "nosuchns: unknown namespace in --params nosuchns.training.epochs; valid: ['unet_frm']"


@pytest.mark.slow  # an MLflow SQLite store
def test_a_user_error_ends_the_run_and_the_architecture_run_failed_with_its_message(tracking, monkeypatch):
    from mlflow.tracking.fluent import _safe_end_run, start_run

    monkeypatch.delenv("PIXELHEAL_TRACEBACK", raising=False)
    client, parent_id = tracking
    start_run(run_id=parent_id, nested=True)  # kedro-mlflow restarts its run before each node
    children, tracker, one_line = ArchitectureRunHooks(), TrackingHooks(), UserErrorHooks()
    children.after_context_created(SimpleNamespace(params=PARAMS))
    children.before_pipeline_run(FakeCatalog(set()))
    tracker._is_mlflow_enabled, tracker.run_id = True, parent_id  # as kedro-mlflow's before_pipeline_run leaves it
    OPEN_RUNS.add(parent_id)
    node = Node(_identity, "images", "checkpoint", name="train", namespace="unet_frm")
    children.before_node_run(node)  # the child run opens before the namespace's first node
    error = ValueError("cannot read image file a/bad.jpg: truncated")
    children.on_node_error(error, node)  # the order pluggy calls them in: tryfirst, normal, trylast
    tracker.on_node_error(error, node)
    with pytest.raises(UserInputError) as exit_line:
        one_line.on_node_error(error, node)
    _safe_end_run()  # MLflow's exit handler, which ended the run FINISHED before
    message = "unet_frm.train failed: cannot read image file a/bad.jpg: truncated"
    assert str(exit_line.value) == message
    runs = client.search_runs([client.get_run(parent_id).info.experiment_id])
    assert {r.info.run_name == "unet_frm" for r in runs} == {True, False}
    for run in runs:
        assert (run.info.status, run.data.tags[ERROR_TAG]) == ("FAILED", message)
    assert parent_id not in OPEN_RUNS


@pytest.mark.slow  # an MLflow SQLite store
def test_runs_of_a_killed_process_are_marked_killed_at_the_next_start(tracking):
    client, parent_id = tracking
    experiment = client.get_run(parent_id).info.experiment_id
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, host = ended.stdout.strip(), socket.gethostname()
    tags = {
        "killed": {PID_TAG: dead, HOST_TAG: host},
        "live": {PID_TAG: str(os.getpid()), HOST_TAG: host},
        "elsewhere": {PID_TAG: dead, HOST_TAG: f"not-{host}"},
        "untagged": {},
    }
    ids = {name: client.create_run(experiment, tags=t, run_name=name).info.run_id for name, t in tags.items()}
    assert mark_killed_runs(client, experiment) == [ids["killed"]]
    status = {name: client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert status == {"killed": "KILLED", "live": "RUNNING", "elsewhere": "RUNNING", "untagged": "RUNNING"}
    assert (
        client.get_run(ids["killed"]).data.tags[ERROR_TAG] == f"process {dead} on {host} ended without closing the run"
    )
    assert mark_killed_runs(client, experiment) == []


def _mlflow_context(root: Path, store: Path) -> SimpleNamespace:
    """The context kedro-mlflow's after_context_created reads, with conf/base/mlflow.yml pointing at `store`."""
    from kedro.config import OmegaConfigLoader

    (root / "conf" / "base").mkdir(parents=True)
    text = (PROJECT_ROOT / "conf" / "base" / "mlflow.yml").read_text()
    (root / "conf" / "base" / "mlflow.yml").write_text(text.replace("sqlite:///mlflow.db", f"sqlite:///{store}"))
    (root / "conf" / "local").mkdir()
    loader = OmegaConfigLoader(str(root / "conf"), base_env="base", default_run_env="local")
    return SimpleNamespace(
        config_loader=loader, project_path=root, _package_name="pixelheal", _get_config_credentials=dict
    )


def test_an_unusable_tracking_store_stops_tracked_runs_in_one_line_and_not_inpaint(tmp_path):
    import mlflow
    from kedro.io import DataCatalog

    store = tmp_path / "mlflow.db"
    store.write_bytes(b"not a database " * 100)
    previous, before = mlflow.get_tracking_uri(), store.read_bytes()
    hooks = TrackingHooks()
    try:
        hooks.after_context_created(_mlflow_context(tmp_path, store))  # warns, does not stop yet
        pipeline = Pipeline([Node(_identity, "a", "b", name="inpaint_images")])
        hooks.before_pipeline_run({**RUN_PARAMS, "pipeline_names": ["inpaint"]}, pipeline, DataCatalog())
        hooks.after_pipeline_run({}, pipeline, DataCatalog())
        with pytest.raises(TrackingStoreError) as error:
            hooks.before_pipeline_run(RUN_PARAMS, pipeline, DataCatalog())
    finally:
        mlflow.set_tracking_uri(previous)
    assert str(error.value).startswith(f"MLflow tracking store {store} cannot be used (file is not a database): ")
    assert "\n" not in str(error.value) and store.read_bytes() == before
