"""The `inpaint` pipeline: a trained checkpoint + a folder of images + their masks → inpainted images."""

from pixelheal.pipelines.inpaint.pipeline import create_pipeline

__all__ = ["create_pipeline"]
