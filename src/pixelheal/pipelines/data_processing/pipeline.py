"""Wiring of the data_processing pipeline."""

from kedro.pipeline import Node, Pipeline

from pixelheal.pipelines.data_processing.nodes import ingest_images, preview_images


def create_pipeline(**kwargs) -> Pipeline:
    """Source → cropped and resized images + metadata (+ occluded twins for paired sources)."""
    return Pipeline(
        [
            Node(
                ingest_images,
                inputs=["params:data_processing.source", "params:data_processing.preprocessing"],
                outputs=["images", "image_metadata", "paired_images"],
                name="ingest_images",
            ),
            Node(
                preview_images,
                inputs=["images", "params:data_processing.preview_count"],
                outputs="images_preview",
                name="preview_images",
            ),
        ]
    )
