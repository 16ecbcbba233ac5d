"""Wiring of the tune_<arch> pipelines: one template, instantiated per architecture under the namespace `tune.<arch>`."""

from kedro.pipeline import Node, Pipeline

from pixelheal.pipelines.train.pipeline import SHARED_DATA
from pixelheal.pipelines.tune.nodes import tune_architecture


def create_template() -> Pipeline:
    """Run one architecture's study: best parameters, optimisation history, importances."""
    return Pipeline(
        [
            Node(
                tune_architecture,
                inputs=["images", "masks", "split_indices", "params:study", "params:model", "params:training"],
                outputs=["best_params", "history_plot", "importance_plot"],
                name="tune",
            )
        ]
    )


def create_pipeline(arch: str) -> Pipeline:
    """The template under `tune.<arch>`: it reads `tune.<arch>`, `<arch>.model` and `<arch>.training`."""
    parameters = {
        "params:study": f"params:tune.{arch}",
        **{f"params:{b}": f"params:{arch}.{b}" for b in ("model", "training")},
    }
    return Pipeline(create_template(), namespace=f"tune.{arch}", inputs=SHARED_DATA, parameters=parameters)
