"""Ingest the configured image source and crop / resize it into the processed image array."""

from pixelheal.pipelines.data_processing.pipeline import create_pipeline

__all__ = ["create_pipeline"]
