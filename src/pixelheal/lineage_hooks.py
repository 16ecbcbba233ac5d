"""Kedro hook: a lineage record beside every persisted output, and a stop before a node reads stale inputs.

Node functions stay pure: the hook records what each file-backed output was made from (see
`pixelheal.lineage`) and, before anything runs, refuses inputs that no longer belong together —
masks made from other images than `images.npy` holds now, a checkpoint trained on another split —
with one line naming the pipeline to rerun.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node, Pipeline
from mlflow.entities import RunStatus

from pixelheal.lineage import Lineage, Origin, Staleness

ERROR_TAG = "pixelheal.error"  # the MLflow tag holding the line a failed run ended with


class StaleInputError(SystemExit):
    """A node's inputs were made from other data than there is now; exits with one line naming what to rerun."""


def _is_parameter(name: str) -> bool:
    return name == "parameters" or name.startswith("params:")


def _local_file(dataset: Any) -> Path | None:
    """The local file a dataset reads and writes, if it is one plain (unversioned, local) file."""
    filepath = getattr(dataset, "_filepath", None)
    if filepath is None or getattr(dataset, "_version", None) is not None:
        return None
    if getattr(dataset, "_protocol", "file") != "file":
        return None
    return Path(str(filepath))


def _shown(path: Path) -> str:
    """`path` as the user would type it: relative to the project folder a `kedro run` starts in."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _fail_tracking_run(message: str) -> None:
    """End the open MLflow run FAILED, tagged with `message`: a SystemExit skips kedro-mlflow's error hook."""
    if mlflow.active_run() is None:
        return
    mlflow.set_tag(ERROR_TAG, message[:5000])
    while mlflow.active_run() is not None:  # kedro-mlflow can have its run on MLflow's stack twice
        mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))


class LineageHooks:
    """Write `<file>.lineage.json` beside each output; stop a run whose inputs do not belong together.

    Tracked datasets are the file-backed outputs of the registered pipelines; others (parameters,
    MLflow-only datasets, the training resume state the loop writes itself) are not checked.
    `pipelines` defaults to the project's registry.
    """

    def __init__(self, pipelines: Mapping[str, Pipeline] | None = None) -> None:
        self._pipelines = pipelines
        self._tracked: set[str] | None = None
        self._catalog: Any = None
        self._lineage = Lineage(self._locate)
        self._files: dict[str, Path | None] = {}
        self._pending: dict[str, tuple[dict[str, Any], dict[str, Origin]]] = {}

    def _registry(self) -> Mapping[str, Pipeline]:
        if self._pipelines is None:
            from kedro.framework.project import pipelines  # the registry, loaded lazily by Kedro

            self._pipelines = {name: pipe for name, pipe in pipelines.items() if name != "__default__"}
        return self._pipelines

    def _outputs(self) -> set[str]:
        if self._tracked is None:
            self._tracked = {name for pipe in self._registry().values() for name in pipe.all_outputs()}
        return self._tracked

    def _bind(self, catalog: Any) -> None:
        """Start afresh for a new catalog: file locations and cached stamps belong to one run."""
        if catalog is not self._catalog:
            self._catalog, self._files, self._pending = catalog, {}, {}
            self._lineage = Lineage(self._locate)

    def _locate(self, name: str) -> Path | None:
        if name not in self._files:
            self._files[name] = _local_file(self._catalog.get(name)) if name in self._outputs() else None
        return self._files[name]

    @hook_impl(tryfirst=True)  # before kedro-mlflow opens a run for a run that cannot start
    def before_pipeline_run(self, pipeline: Pipeline, catalog: Any) -> None:
        self._bind(catalog)
        free = pipeline.inputs()
        read = dict.fromkeys(name for node in pipeline.nodes for name in node.inputs if name in free)
        problem = self._lineage.stale([name for name in read if not _is_parameter(name)], pipeline.all_outputs())
        if problem:
            raise StaleInputError(self._message(problem))

    @hook_impl(tryfirst=True)  # before the node runs, so nothing is written from inputs that do not match
    def before_node_run(self, node: Node, catalog: Any, inputs: dict[str, Any]) -> None:
        self._bind(catalog)
        datasets = [name for name in node.inputs if not _is_parameter(name)]
        problem = self._lineage.stale(datasets)
        if problem:
            message = self._message(problem)
            _fail_tracking_run(message)
            raise StaleInputError(message)
        params = {name: inputs[name] for name in node.inputs if _is_parameter(name)}
        self._pending[node.name] = (params, self._lineage.made_from(datasets))

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node: Node) -> None:
        pending = self._pending.get(node.name)
        if pending is not None:
            self._lineage.write(dataset_name, node.name, *pending)

    def _message(self, problem: Staleness) -> str:
        first = problem.pairs[0]
        source = self._lineage.path(first.made_from)
        where = _shown(source) if source is not None else first.made_from
        return f"{first.dataset} was made from other {first.made_from} than {where} holds now: rerun `{self._rerun(problem)}`"

    def _rerun(self, problem: Staleness) -> str:
        """The command that makes every stale dataset again: the smallest pipeline producing each, in registry order."""
        registry = self._registry()
        chosen: set[str] = set()
        for dataset in problem.datasets:
            producers = [name for name, pipe in registry.items() if dataset in pipe.all_outputs()]
            if producers:
                chosen.add(min(producers, key=lambda name: len(registry[name].nodes)))
        if chosen:
            return f"kedro run --pipelines={','.join(name for name in registry if name in chosen)}"
        records = (self._lineage.record(dataset) for dataset in problem.datasets)
        nodes = dict.fromkeys(record.node for record in records if record is not None)
        return f"kedro run --nodes={','.join(nodes)}"
