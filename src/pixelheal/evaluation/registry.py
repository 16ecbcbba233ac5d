"""Every metric the project reports, defined once: its name, direction, unit and meaning.

A metric is looked up by any key it is reported under: its bare name (`psnr`), with the split
prefix of the training history and the test results (`train_loss`, `val_psnr`, `test_psnr_hole`),
with the area-bucket suffix of the summary (`test_psnr_hole_area_10_20`), and with the point-estimate
qualifier (`test_point_psnr_hole`: the metric scored on the mean of several sampled completions, the
same completion as the plain key for deterministic methods).

Unregistered names are an architecture's own loss terms (the GAN's `g_loss`, `d_loss`,
`adversarial`, `l1`, `edge`, ...): they count as losses, lower is better. Note that a loss term
named like a metric (the GAN's `ssim` term) is read as that metric.

Adding a metric: register it here and compute it per image (`evaluation/metrics.py`
`per_image_metrics`, or the architecture's `test_metrics`); the summary, the comparison table, its
chart and best-epoch selection follow from this registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SPLITS = ("train", "val", "test")
POINT = "point"  # qualifier of a metric scored on the point-estimate completion
_KEY = re.compile(rf"^(?:(?:{'|'.join(SPLITS)})_)?(?:{POINT}_)?(?P<name>.+?)(?:_area_\d+_\d+)?$")


@dataclass(frozen=True)
class Metric:
    """One reported quantity.

    `higher_is_better` is None for a count, which is reported but never compared. `summary` says
    how `summarize()` reports it on the test split: "bucketed" (the mean over the images and one
    mean per hole-area bucket), "overall" (one number) or "none" (reported elsewhere, if at all).
    """

    name: str
    higher_is_better: bool | None
    unit: str
    description: str
    summary: Literal["bucketed", "overall", "none"] = "none"


_METRICS = (
    # The order of the summarised metrics is the column order of the summary and comparison table.
    Metric("psnr", True, "dB", "PSNR of the whole composited image (capped at 100 dB)", "bucketed"),
    Metric("ssim", True, "", "structural similarity of the whole composited image, in [-1, 1]", "bucketed"),
    Metric("l1_hole", False, "", "mean absolute error over the hole's sub-pixels, images in [0, 1]", "bucketed"),
    Metric("psnr_hole", True, "dB", "PSNR over the hole's sub-pixels only (capped at 100 dB)", "bucketed"),
    Metric("edge_error", False, "", "mean absolute difference of the Sobel gradient magnitudes", "bucketed"),
    Metric("lpips", False, "", "LPIPS perceptual distance (AlexNet), when enabled", "bucketed"),
    Metric("fid", False, "", "Fréchet Inception Distance of the test split, when enabled", "overall"),
    Metric("ms_per_image", False, "ms", "inference wall-clock time per image", "overall"),
    Metric("n_images", None, "images", "number of scored images", "overall"),
    Metric("nll_bpd", False, "bits/dim", "negative log-likelihood of the hole's sub-pixels"),
    Metric("loss", False, "", "the total training objective, the one that is minimised"),
)
METRICS: dict[str, Metric] = {metric.name: metric for metric in _METRICS}


def metric_name(key: str) -> str:
    """The metric name inside a history or result key: `test_psnr_hole_area_10_20`, `test_point_psnr_hole` -> `psnr_hole`."""
    match = _KEY.match(key)
    return match["name"] if match else key


def lookup(key: str) -> Metric | None:
    """The registered metric behind `key`, or None for an unregistered (loss) name."""
    return METRICS.get(metric_name(key))


def higher_is_better(key: str) -> bool:
    """Whether a larger value of `key` is better; unregistered names are losses (False)."""
    metric = lookup(key)
    if metric is None:
        return False
    if metric.higher_is_better is None:
        raise ValueError(f"{key}: {metric.name} is a count, not a score; it has no better direction")
    return metric.higher_is_better


def is_better(key: str, new: float, old: float | None) -> bool:
    """Whether `new` improves on `old` (None: nothing yet, so any value does) for the metric `key`."""
    if old is None:
        return True
    return new > old if higher_is_better(key) else new < old


def summarised(kind: Literal["bucketed", "overall"]) -> tuple[str, ...]:
    """Names of the metrics `summarize()` reports as `kind`, in registry order."""
    return tuple(metric.name for metric in _METRICS if metric.summary == kind)
