"""One table and chart over every architecture's test metrics and the classical baselines."""

from pixelheal.pipelines.compare.pipeline import create_pipeline

__all__ = ["create_pipeline"]
