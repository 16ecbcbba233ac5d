"""Wiring of the split pipeline."""

from kedro.pipeline import Node, Pipeline

from pixelheal.pipelines.split.nodes import make_splits


def create_pipeline(**kwargs) -> Pipeline:
    """Image metadata → train / val / test ids."""
    return Pipeline(
        [
            Node(
                make_splits,
                inputs=[
                    "image_metadata",
                    "params:split.fractions",
                    "params:split.seed",
                    "params:split.stratify",
                    "params:split.official_test",
                ],
                outputs="split_indices",
                name="split_images",
            ),
        ]
    )
