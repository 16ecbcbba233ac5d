"""Evaluation: the metric registry, per-image metrics, area buckets, LPIPS/FID, sample grids, baselines, comparison.

contract: metric inputs are float in [0, 1], N×C×H×W; picture and baseline inputs are uint8
N×C×H×W; masks are N×1×H×W with 1 = hole (missing), 0 = known.
"""

from pixelheal.evaluation.baselines import BASELINES, inpaint_baseline
from pixelheal.evaluation.grids import image_grid, loss_curve, sample_grid
from pixelheal.evaluation.metrics import (
    AREA_BUCKETS,
    PSNR_CAP_DB,
    area_bucket,
    hole_fractions,
    per_image_metrics,
)
from pixelheal.evaluation.perceptual import PerceptualMetrics
from pixelheal.evaluation.registry import METRICS, Metric, higher_is_better, is_better, lookup, metric_name
from pixelheal.evaluation.report import comparison_chart, comparison_table, to_markdown
from pixelheal.evaluation.summary import HEADLINE_KEYS, summarize, summary_keys

__all__ = [
    "AREA_BUCKETS",
    "BASELINES",
    "HEADLINE_KEYS",
    "METRICS",
    "Metric",
    "PSNR_CAP_DB",
    "PerceptualMetrics",
    "area_bucket",
    "comparison_chart",
    "comparison_table",
    "higher_is_better",
    "hole_fractions",
    "image_grid",
    "inpaint_baseline",
    "is_better",
    "lookup",
    "loss_curve",
    "metric_name",
    "per_image_metrics",
    "sample_grid",
    "summarize",
    "summary_keys",
    "to_markdown",
]
