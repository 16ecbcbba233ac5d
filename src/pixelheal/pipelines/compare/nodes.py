"""Nodes of the compare pipeline."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pixelheal.evaluation.baselines import inpaint_baseline
from pixelheal.evaluation.perceptual import PerceptualMetrics
from pixelheal.evaluation.report import comparison_chart, comparison_table, to_markdown
from pixelheal.evaluation.scoring import score_completions

logger = logging.getLogger(__name__)


def score_baselines(
    images: np.ndarray,
    masks: np.ndarray,
    split_indices: dict[str, list[int]],
    baselines: list[str],
    workers: int,
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    """Classical inpainting of the test split with its fixed masks, scored like the architectures."""
    test = np.asarray(split_indices["test"])
    test_images, test_masks = images[test], masks[test]
    results = {}
    for kind in baselines:
        tick = time.perf_counter()
        outputs = inpaint_baseline(kind, test_images, test_masks, workers=workers)
        ms = 1000 * (time.perf_counter() - tick) / max(len(test), 1)
        perceptual = PerceptualMetrics(
            lpips=evaluation["lpips"], fid=evaluation["fid"], lpips_net=evaluation["lpips_net"]
        )
        results[f"baseline:{kind}"] = {
            "method": f"baseline:{kind}",
            **score_completions(test_images, test_masks, outputs, perceptual, ms),
        }
        logger.info("baseline %s: test_psnr_hole=%.3f", kind, results[f"baseline:{kind}"]["metrics"]["test_psnr_hole"])
    return results


def compare_methods(
    baseline_metrics: dict[str, Any], *architecture_metrics: dict[str, Any]
) -> tuple[pd.DataFrame, str, Figure]:
    """The comparison table (CSV and Markdown) and bar chart over every method."""
    results = [*architecture_metrics, *baseline_metrics.values()]
    table = comparison_table({r["method"]: r["metrics"] for r in results})
    return table, to_markdown(table), comparison_chart(table)
