"""The per-architecture template: `<arch>.train` → checkpoint, `<arch>.evaluate` → metrics and pictures."""

from pixelheal.pipelines.train.pipeline import create_pipeline

__all__ = ["create_pipeline"]
