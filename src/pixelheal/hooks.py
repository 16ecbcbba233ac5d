"""Kedro hooks: a pre-flight check of a run, one-line user errors, one MLflow child run per architecture.

The project's MLflow run itself (kedro-mlflow's, with failure handling) is `pixelheal.tracking`.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node, Pipeline
from mlflow.entities import Metric, Param, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from pixelheal.tracking import ERROR_TAG, FAILED, MAX_TAG, OPEN_RUNS, failure_line, process_tags, user_error

logger = logging.getLogger(__name__)


class MissingInputsError(SystemExit):
    """A run's inputs do not exist yet; exits with one line that names the command to run first."""


class UserInputError(SystemExit):
    """A node stopped on a bad parameter or input file; exits with its one-line message."""


class ParameterError(SystemExit):
    """A parameter block is invalid; exits with one line naming the key, before any node runs."""


def _producers(dataset: str) -> list[str]:
    from kedro.framework.project import pipelines  # the registry, loaded lazily by Kedro

    found = [name for name, pipe in pipelines.items() if name != "__default__" and dataset in pipe.all_outputs()]
    return sorted(found, key=lambda name: len(pipelines[name].nodes))[:1]


class PreflightHooks:
    """Stop before anything runs when a parameter is unknown or invalid or a pipeline's inputs are missing."""

    def __init__(self) -> None:
        self._loader: Any = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._loader = context.config_loader  # pixelheal.config_loader.ProjectConfigLoader

    @hook_impl(tryfirst=True)  # before kedro-mlflow opens a run for a run that cannot start
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        runtime = run_params.get("runtime_params") or {}
        configured = self._loader.configured_parameters() if runtime else {}
        _check_parameters(pipeline, catalog, runtime, configured)
        missing = [
            name
            for name in sorted(pipeline.inputs())
            if not name.startswith("params:") and name != "parameters" and not catalog.exists(name)
        ]
        if not missing:
            return
        first = list(dict.fromkeys(p for name in missing for p in _producers(name)))
        hint = f"run `kedro run --pipelines={','.join(first)}` first" if first else "check the catalog"
        raise MissingInputsError(f"Missing input(s) {', '.join(missing)}: {hint}.")


def _check_parameters(pipeline: Pipeline, catalog: Any, runtime: dict[str, Any], configured: dict[str, Any]) -> None:
    """The `--params` keys, then every declared parameter block the pipeline reads; the first error stops the run."""
    from pixelheal.pipelines.parameters import check_parameters, check_runtime_parameters  # lazily: heavy imports

    params = catalog.load("parameters")
    read = [name.removeprefix("params:") for name in pipeline.inputs() if name.startswith("params:")]
    try:
        check_runtime_parameters(runtime, configured, params)
        check_parameters(params, read)
    except ValueError as error:
        raise ParameterError(str(error)) from None


class UserErrorHooks:
    """Turn errors a user can cause (bad parameter, missing or unreadable file) into one line.

    Library code raises ValueError / FileNotFoundError with a message naming the parameter or
    file; the full traceback would only bury it. PIXELHEAL_TRACEBACK=1 keeps the traceback.
    """

    @hook_impl(trylast=True)  # the exit stops the other hooks: they record the failure first
    def on_node_error(self, error: Exception, node: Node) -> None:
        if user_error(error):
            raise UserInputError(failure_line(error, node))


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class ArchitectureRunHooks:
    """Log each architecture namespace (`<arch>.train`, `<arch>.evaluate`) to its own MLflow run.

    The run is a child of kedro-mlflow's run for the whole `kedro run`, opened before the
    namespace's first node, named after the namespace and tagged with architecture, dataset, mask
    generator, git commit and process. Parameters, per-epoch history, test metrics and the
    checkpoint / picture artifacts all go there, so the MLflow UI compares architectures column
    by column. The saved checkpoint is also logged as an MLflow model of that run and registered
    as a new version of `pixelheal-<namespace>` (see `pixelheal.inference.mlflow_model`), ready for
    `mlflow models serve`. Node functions stay free of tracking code.
    """

    ARTIFACTS = ("checkpoint", "sample_grid", "loss_curve", "progress")

    def __init__(self) -> None:
        self._runs: dict[str, str] = {}
        self._params: dict[str, Any] = {}
        self._catalog: Any = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._params = context.params

    @hook_impl
    def before_pipeline_run(self, catalog: Any) -> None:
        self._runs, self._catalog = {}, catalog

    def _namespace(self, node: Node) -> str | None:
        namespace = node.namespace
        return (
            namespace
            if namespace and isinstance(self._params.get(namespace), dict) and "model" in self._params[namespace]
            else None
        )

    def _run_id(self, namespace: str) -> str | None:
        if namespace not in self._runs:
            parent = mlflow.active_run()
            if parent is None:  # tracking disabled for this pipeline in mlflow.yml
                return None
            block = self._params[namespace]
            tags = {
                MLFLOW_PARENT_RUN_ID: parent.info.run_id,
                "architecture": str(block["model"].get("kind", namespace)),
                "dataset": str(self._params.get("data_processing", {}).get("source", {}).get("kind", "unknown")),
                "mask_generator": str(self._params.get("masks", {}).get("generator", {}).get("kind", "unknown")),
                "git_commit": _git_commit(),
                **process_tags(),
            }
            run = mlflow.MlflowClient().create_run(parent.info.experiment_id, tags=tags, run_name=namespace)
            self._runs[namespace] = run.info.run_id
            OPEN_RUNS.add(run.info.run_id)
            params = _flatten({k: v for k, v in block.items()}) | _flatten(
                {"evaluation": self._params.get("evaluation", {})}
            )
            mlflow.MlflowClient().log_batch(
                run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()]
            )
        return self._runs[namespace]

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        namespace = self._namespace(node)
        if namespace:  # opened now, so a failure of the namespace's first node is recorded in it
            self._run_id(namespace)

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        namespace = self._namespace(node)
        run_id = namespace and self._runs.get(namespace)
        if not run_id:
            return
        client = mlflow.MlflowClient()
        checkpoint = outputs.get(f"{namespace}.checkpoint")
        if checkpoint is not None:
            metrics = [
                Metric(key, float(value), 0, record["epoch"])
                for record in checkpoint.history
                for key, value in record.items()
                if key != "epoch"
            ]
            metrics.append(Metric("best_epoch", float(checkpoint.epoch), 0, 0))
            metrics += [Metric(k, float(v), 0, 0) for k, v in checkpoint.metrics.items() if k.endswith("_untrained")]
            client.log_batch(run_id, metrics=metrics)
        results = outputs.get(f"{namespace}.metrics")
        if results is not None:
            client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), 0, 0) for k, v in results.get("metrics", {}).items() if v is not None],
            )
            for name, reason in results.get("unavailable", {}).items():
                client.set_tag(run_id, f"unavailable.{name}", reason)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node: Node) -> None:
        namespace = self._namespace(node)
        if (
            not namespace
            or dataset_name not in {f"{namespace}.{a}" for a in self.ARTIFACTS}
            or namespace not in self._runs
        ):
            return
        dataset = self._catalog.get(dataset_name)
        path = getattr(dataset, "_filepath", None)
        folder = getattr(dataset, "_path", None)  # a partitioned dataset (the progress pictures): its folder
        if path is not None and Path(path).is_file():
            mlflow.MlflowClient().log_artifact(self._runs[namespace], str(path))
            if dataset_name == f"{namespace}.checkpoint":
                self._register(namespace, Path(path))
        elif folder is not None and Path(folder).is_dir():
            mlflow.MlflowClient().log_artifacts(self._runs[namespace], str(folder), Path(folder).name)

    def _register(self, namespace: str, checkpoint: Path) -> None:
        """Log the checkpoint as a pyfunc model of the namespace's run, as a new version of `pixelheal-<namespace>`."""
        from pixelheal.inference.mlflow_model import REGISTERED_PREFIX, log_inpainting_model  # lazily: training only

        run_id = self._runs[namespace]
        run_tags = mlflow.MlflowClient().get_run(run_id).data.tags
        tags = {key: run_tags[key] for key in ("architecture", "git_commit")} | {
            "kedro_run_id": run_tags[MLFLOW_PARENT_RUN_ID]
        }
        description = f"`{namespace}.train` of MLflow run {run_id}, git commit {tags['git_commit']}"
        started = time.perf_counter()
        version = log_inpainting_model(checkpoint, run_id, f"{REGISTERED_PREFIX}{namespace}", tags, description)
        logger.info("registered %s version %s (%.1f s)", version.name, version.version, time.perf_counter() - started)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._close(RunStatus.to_string(RunStatus.FINISHED))

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        self._close(FAILED, f"{type(error).__name__}: {error}")

    @hook_impl(tryfirst=True)  # before UserErrorHooks turns the error into an exit
    def on_node_error(self, error: Exception, node: Node) -> None:
        self._close(FAILED, failure_line(error, node))

    def _close(self, status: str, message: str | None = None) -> None:
        if not self._runs:  # a client would open the store, which a pipeline that does not track may lack
            return
        client = mlflow.MlflowClient()
        for run_id in self._runs.values():
            if message:
                client.set_tag(run_id, ERROR_TAG, message[:MAX_TAG])
            client.set_terminated(run_id, status)
            OPEN_RUNS.discard(run_id)
        self._runs = {}
