"""Project hooks: the pre-flight checks of a run, one-line user errors, one MLflow child run per architecture."""

from __future__ import annotations

import dataclasses
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
from tests.inference.helpers import tiny_checkpoint


def _identity(*args: Any) -> Any:
    return args[0]


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
        PreflightHooks().before_pipeline_run(consumer, FakeCatalog(existing=set(), values={"parameters": {"seed": 0}}))
    assert str(error.value) == "Missing input(s) images: run `kedro run --pipelines=data_processing` first."


def test_present_inputs_and_valid_parameters_let_the_run_start():
    pipeline = Pipeline([Node(_identity, ["images", "params:unet_frm.training"], "out", name="train")])
    catalog = FakeCatalog(existing={"images"}, values={"parameters": {"unet_frm": {"training": {"epochs": 2}}}})
    PreflightHooks().before_pipeline_run(pipeline, catalog)


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
        PreflightHooks().before_pipeline_run(pipeline, catalog)
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
    client, parent_id = tracking
    checkpoint_file = tmp_path / "unet_frm.pt"
    checkpoint_file.write_bytes(b"weights")
    hooks = ArchitectureRunHooks()
    hooks.after_context_created(SimpleNamespace(params=PARAMS))
    hooks.before_pipeline_run(FakeCatalog(set(), files={"unet_frm.checkpoint": checkpoint_file}))
    train = Node(_identity, "images", "checkpoint", name="train", namespace="unet_frm")
    history = [{"epoch": 1, "train_loss": 0.5, "val_psnr": 11.0}, {"epoch": 2, "train_loss": 0.25, "val_psnr": 12.0}]
    checkpoint = dataclasses.replace(tiny_checkpoint(), history=history, epoch=2)
    hooks.after_node_run(train, {"unet_frm.checkpoint": checkpoint})
    hooks.after_dataset_saved("unet_frm.checkpoint", train)
    evaluate = Node(_identity, "checkpoint", "metrics", name="evaluate", namespace="unet_frm")
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


def test_nodes_outside_an_architecture_namespace_log_nothing():
    hooks = ArchitectureRunHooks()
    hooks.after_context_created(SimpleNamespace(params=PARAMS))
    hooks.before_pipeline_run(FakeCatalog(set()))
    hooks.after_node_run(Node(_identity, "a", "b", name="compare"), {"b": 1})  # no MLflow run is opened
    assert hooks._runs == {}
