"""The per-architecture study: `tune.<arch>.tune` → best parameters (YAML), history and importance plots."""

from pixelheal.pipelines.tune.pipeline import create_pipeline

__all__ = ["create_pipeline"]
