"""Wiring of the inpaint pipeline; its folders are parameters, as they are the user's own files."""

from kedro.pipeline import Node, Pipeline

from pixelheal.pipelines.inpaint.nodes import inpaint_images


def create_pipeline(**kwargs) -> Pipeline:
    """One node, `inpaint_images`, reading the whole `inpaint:` block (declared by `InpaintParameters`)."""
    return Pipeline([Node(inpaint_images, inputs="params:inpaint", outputs=None, name="inpaint_images")])
