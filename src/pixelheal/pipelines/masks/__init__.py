"""Precompute one mask per image with the configured generator (1 = hole)."""

from pixelheal.pipelines.masks.pipeline import create_pipeline

__all__ = ["create_pipeline"]
