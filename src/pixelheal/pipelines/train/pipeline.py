"""Wiring of the train_<arch> pipelines: one template, instantiated per architecture namespace."""

from kedro.pipeline import Node, Pipeline

from pixelheal.pipelines.train.nodes import evaluate_model, train_model

SHARED_DATA = {"images", "masks", "split_indices"}


def create_template() -> Pipeline:
    """Train then evaluate one architecture; parameters come from its namespace block."""
    return Pipeline(
        [
            Node(
                train_model,
                inputs=["images", "masks", "split_indices", "params:model", "params:training", "train_state"],
                outputs=["checkpoint", "progress"],
                name="train",
            ),
            Node(
                evaluate_model,
                inputs=["checkpoint", "images", "masks", "split_indices", "params:evaluation", "params:model"],
                outputs=["metrics", "sample_grid", "loss_curve"],
                name="evaluate",
            ),
        ]
    )


def create_pipeline(arch: str) -> Pipeline:
    """The template under the namespace `arch` (parameters `<arch>.model`, `<arch>.training`)."""
    return Pipeline(create_template(), namespace=arch, inputs=SHARED_DATA, parameters={"params:evaluation"})
