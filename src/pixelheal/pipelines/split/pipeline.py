"""Wiring of the split pipeline."""

from kedro.pipeline import Node, Pipeline

from pixelheal.pipelines.split.nodes import make_splits


def create_pipeline(**kwargs) -> Pipeline:
    """Image metadata → train / val / test ids; the whole `split` block is one declared parameter."""
    return Pipeline(
        [Node(make_splits, inputs=["image_metadata", "params:split"], outputs="split_indices", name="split_images")]
    )
