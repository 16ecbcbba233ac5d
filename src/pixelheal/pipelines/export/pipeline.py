"""Wiring of the export pipeline: one node from the `export:` block to the exported files."""

from kedro.pipeline import Node, Pipeline

from pixelheal.pipelines.export.nodes import export_checkpoint


def create_pipeline(**kwargs) -> Pipeline:
    """One node, `export_model`, reading the whole `export:` block (declared by `ExportParameters`)."""
    return Pipeline([Node(export_checkpoint, inputs="params:export", outputs="exported_models", name="export_model")])
