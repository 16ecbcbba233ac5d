"""Wiring of the compare pipeline."""

from kedro.pipeline import Node, Pipeline

from pixelheal.pipelines.compare.nodes import compare_methods, score_baselines


def create_pipeline(architectures: list[str]) -> Pipeline:
    """Baselines on the test masks, then one table and chart with every architecture's metrics."""
    return Pipeline(
        [
            Node(
                score_baselines,
                inputs=[
                    "images",
                    "masks",
                    "split_indices",
                    "params:compare.baselines",
                    "params:compare.workers",
                    "params:evaluation",
                ],
                outputs="baseline_metrics",
                name="score_baselines",
            ),
            Node(
                compare_methods,
                inputs=["baseline_metrics", *(f"{arch}.metrics" for arch in architectures)],
                outputs=["comparison_table", "comparison_markdown", "comparison_chart"],
                name="compare_methods",
            ),
        ]
    )
