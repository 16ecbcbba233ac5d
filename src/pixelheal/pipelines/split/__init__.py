"""Seeded train / val / test indices."""

from pixelheal.pipelines.split.pipeline import create_pipeline

__all__ = ["create_pipeline"]
