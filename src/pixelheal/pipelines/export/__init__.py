"""The `export` pipeline: a trained checkpoint → an ONNX and / or TorchScript file of its `inpaint`, checked."""

from pixelheal.pipelines.export.pipeline import create_pipeline

__all__ = ["create_pipeline"]
