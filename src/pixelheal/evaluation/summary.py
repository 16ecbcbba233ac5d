"""Flatten per-image metrics into the test_* dict logged for every architecture.

The keys are identical for every architecture and every input (MLflow compares runs column by
column); a metric that cannot be computed is None, never a made-up number. Besides the one completion
per image, the per-image metrics are reported on the point-estimate completion (`test_point_<metric>`,
the mean of several samples for sampling architectures) so that methods compare like with like.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor

from pixelheal.evaluation.metrics import AREA_BUCKETS, area_bucket
from pixelheal.evaluation.registry import POINT, summarised

logger = logging.getLogger(__name__)

BUCKET_METRICS: tuple[str, ...] = summarised("bucketed")
# LPIPS comes from the perceptual network, every other bucketed metric from per_image_metrics()
PER_IMAGE_METRICS: tuple[str, ...] = tuple(m for m in BUCKET_METRICS if m != "lpips")
# headline means only: the point estimate is a second view of the same images, not another area breakdown
POINT_KEYS: tuple[str, ...] = tuple(f"test_{POINT}_{m}" for m in PER_IMAGE_METRICS)
HEADLINE_KEYS: tuple[str, ...] = (
    *(f"test_{m}" for m in BUCKET_METRICS),
    *POINT_KEYS,
    *(f"test_{m}" for m in summarised("overall")),
)


def summary_keys() -> list[str]:
    """Every key summarize() returns, in order: headline keys then area-bucket variants."""
    buckets = [f"test_{m}_area_{label}" for m in BUCKET_METRICS for _, _, label in AREA_BUCKETS]
    return [*HEADLINE_KEYS, *buckets]


def finite_mean(values: Tensor | None) -> float | None:
    """Mean over the finite entries, or None when there are none."""
    if values is None:
        return None
    v = values.detach().to("cpu", torch.float64).reshape(-1)
    v = v[torch.isfinite(v)]
    return float(v.mean()) if v.numel() else None


def _optional_float(x: float | None) -> float | None:
    """float(x), with None, NaN and infinities mapped to None (JSON has no NaN)."""
    if x is None or not math.isfinite(float(x)):
        return None
    return float(x)


def _check_lengths(columns: dict[str, Tensor | None], n: int) -> None:
    """Raise ValueError unless every present column has n entries."""
    for name, values in columns.items():
        if values is not None and values.numel() != n:
            raise ValueError(f"{name} has {values.numel()} values, expected one per image ({n})")


def _check_metrics(per_image: dict[str, Tensor], name: str) -> None:
    """Raise ValueError unless `per_image` (the argument `name`) holds every per-image metric."""
    missing = [m for m in PER_IMAGE_METRICS if m not in per_image]
    if missing:
        raise ValueError(f"{name} lacks metrics {missing}; expected {list(PER_IMAGE_METRICS)}")


def summarize(
    per_image: dict[str, Tensor],
    hole_fraction: Tensor,
    lpips: Tensor | None,
    fid: float | None,
    ms_per_image: float,
    point: dict[str, Tensor] | None = None,
) -> dict[str, float | None]:
    """Flat test_* dict (same keys always) with overall and per-area-bucket means.

    `point` holds the per-image metrics of the point-estimate completions; None: the completions are
    their own point estimate (a deterministic method), so the point keys repeat the plain ones.
    """
    _check_metrics(per_image, "per_image")
    point = per_image if point is None else point
    _check_metrics(point, "point")
    columns: dict[str, Tensor | None] = {m: per_image[m] for m in PER_IMAGE_METRICS}
    columns["lpips"] = lpips
    fractions = torch.as_tensor(hole_fraction, dtype=torch.float64).reshape(-1)
    _check_lengths(columns, fractions.numel())
    _check_lengths({f"point {m}": point[m] for m in PER_IMAGE_METRICS}, fractions.numel())
    labels = [area_bucket(float(f)) for f in fractions]

    result: dict[str, float | None] = {f"test_{m}": finite_mean(columns[m]) for m in BUCKET_METRICS}
    result |= {key: finite_mean(point[m]) for key, m in zip(POINT_KEYS, PER_IMAGE_METRICS)}
    result["test_fid"] = _optional_float(fid)
    result["test_ms_per_image"] = _optional_float(ms_per_image)
    result["test_n_images"] = fractions.numel()
    for metric in BUCKET_METRICS:
        values = columns[metric]
        for _, _, label in AREA_BUCKETS:
            selected = torch.tensor([lab == label for lab in labels], dtype=torch.bool)
            key = f"test_{metric}_area_{label}"
            result[key] = None if values is None else finite_mean(values.reshape(-1).cpu()[selected])
    return {key: result[key] for key in summary_keys()}
