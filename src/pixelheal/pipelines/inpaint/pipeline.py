"""Wiring of the inpaint pipeline; its folders are parameters, as they are the user's own files."""

from kedro.pipeline import Node, Pipeline

from pixelheal.pipelines.inpaint.nodes import inpaint_images

PARAMETERS = ("model", "models_dir", "images_dir", "masks_dir", "output_dir", "device", "batch_size", "seed")


def create_pipeline(**kwargs) -> Pipeline:
    """One node, `inpaint_images`, reading the `inpaint:` parameter block."""
    return Pipeline(
        [
            Node(
                inpaint_images,
                inputs={name: f"params:inpaint.{name}" for name in PARAMETERS},
                outputs=None,
                name="inpaint_images",
            ),
        ]
    )
