"""Wiring of the masks pipeline."""

from kedro.pipeline import Node, Pipeline

from pixelheal.pipelines.masks.nodes import compute_masks, preview_masks


def create_pipeline(**kwargs) -> Pipeline:
    """Images → one fixed mask per image + hole fractions + a preview."""
    return Pipeline(
        [
            Node(
                compute_masks,
                inputs=[
                    "images",
                    "paired_images",
                    "params:masks.generator",
                    "params:masks.seed",
                    "params:masks.batch_size",
                ],
                outputs=["masks", "mask_metadata"],
                name="precompute_masks",
            ),
            Node(
                preview_masks,
                inputs=["images", "masks", "params:masks.preview_count"],
                outputs="masks_preview",
                name="preview_masks",
            ),
        ]
    )
