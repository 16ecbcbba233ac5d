"""Score completed test images the same way for every method: architectures and classical baselines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from pixelheal.evaluation.metrics import per_image_metrics
from pixelheal.evaluation.perceptual import PerceptualMetrics
from pixelheal.evaluation.summary import finite_mean, summarize
from pixelheal.models.base import InpaintingModel, mean_completion

T = TypeVar("T")


def timed(fn: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """Result of fn() and its wall-clock seconds; CUDA is synchronised, so queued kernels count."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    tick = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return result, time.perf_counter() - tick


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float images in [0, 1] → uint8, as they would be saved to PNG."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def _batches(images: np.ndarray, masks: np.ndarray, batch_size: int, device: torch.device):
    """uint8 arrays → float images in [0, 1] and float masks on `device`, batch by batch."""
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).float().div_(255).to(device)
        yield x, torch.from_numpy(np.ascontiguousarray(masks[start : start + batch_size])).float().to(device)


def _timed_batches(
    infer: Callable[[torch.Tensor, torch.Tensor], T],
    images: np.ndarray,
    masks: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor, T, float]]:
    """Per batch: its rows, its images and masks on `device`, what `infer` made of them and the seconds it took."""
    start = 0
    for x, m in _batches(images, masks, batch_size, device):
        result, seconds = timed(lambda x=x, m=m: infer(x, m), device)
        yield slice(start, start + len(x)), x, m, result, seconds
        start += len(x)


@torch.no_grad()
def complete_images(
    inpaint: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    images: np.ndarray,
    masks: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> tuple[np.ndarray, float]:
    """Composited uint8 completions of `images` (N, C, H, W) and the inference time in ms per image."""
    outputs, elapsed = np.empty_like(images), 0.0
    for part, _, _, out, seconds in _timed_batches(inpaint, images, masks, batch_size, device):
        outputs[part], elapsed = to_uint8(out), elapsed + seconds
    return outputs, 1000 * elapsed / max(len(images), 1)


@torch.no_grad()
def complete_samples(
    model: InpaintingModel, images: np.ndarray, masks: np.ndarray, n_samples: int, device: torch.device
) -> list[np.ndarray]:
    """Several uint8 completions per image (one for deterministic architectures)."""
    x, m = next(_batches(images, masks, len(images), device))
    return [to_uint8(sample) for sample in model.inpaint_samples(x, m, n_samples)]


@torch.no_grad()
def architecture_metrics(
    model: InpaintingModel, images: np.ndarray, masks: np.ndarray, batch_size: int, device: torch.device
) -> dict[str, float | None]:
    """Means of the architecture's own per-image test metrics (e.g. NLL in bits/dim), non-finite values skipped.

    A metric without any finite value (e.g. no image has a hole) is None: the metrics JSON never holds NaN.
    """
    columns: dict[str, list[torch.Tensor]] = {}
    for x, m in _batches(images, masks, batch_size, device):
        for name, values in model.test_metrics(x, m).items():
            columns.setdefault(name, []).append(values.double().cpu())
    return {name: finite_mean(torch.cat(values)) for name, values in columns.items()}


@dataclass(frozen=True)
class Draws:
    """A sampling architecture's test completions, composited uint8 (N, C, H, W)."""

    first: np.ndarray  # one sampled completion per image: the first draw
    point: np.ndarray  # the point estimate: the mean of the draws
    ms_per_image: float  # inference time of one draw


@torch.no_grad()
def complete_draws(
    model: InpaintingModel,
    images: np.ndarray,
    masks: np.ndarray,
    n_samples: int,
    seed: int,
    batch_size: int,
    device: torch.device,
) -> Draws | None:
    """`n_samples` completions per image drawn from `seed`: the first one and their mean (`Draws`).

    None for a deterministic architecture: its completion is its own point estimate, so nothing is
    inferred again. A sampling call holds at most `batch_size` images (copies x batch).
    """
    if not model.stochastic:
        return None
    generator = torch.Generator(device).manual_seed(seed)

    def draw(x: torch.Tensor, m: torch.Tensor) -> list[torch.Tensor]:
        return model.inpaint_draws(x, m, n_samples, generator, max_batch=batch_size)

    first, point, elapsed = np.empty_like(images), np.empty_like(images), 0.0
    for part, x, m, draws, seconds in _timed_batches(draw, images, masks, batch_size, device):
        first[part], point[part] = to_uint8(draws[0]), to_uint8(mean_completion(x, m, draws))
        elapsed += seconds
    return Draws(first, point, 1000 * elapsed / max(len(images) * n_samples, 1))


def _scored_batches(
    images: np.ndarray, masks: np.ndarray, outputs: np.ndarray, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(original, completion, mask) float CPU tensors batch by batch, images in [0, 1]."""
    for start in range(0, len(images), batch_size):
        part = slice(start, start + batch_size)
        original = torch.from_numpy(np.ascontiguousarray(images[part])).float() / 255
        output = torch.from_numpy(np.ascontiguousarray(outputs[part])).float() / 255
        yield original, output, torch.from_numpy(np.ascontiguousarray(masks[part])).float()


def _per_image(images: np.ndarray, masks: np.ndarray, outputs: np.ndarray, batch_size: int) -> dict[str, torch.Tensor]:
    """`per_image_metrics` of the uint8 completions `outputs`, one value per image."""
    columns: dict[str, list[torch.Tensor]] = {}
    for original, output, mask in _scored_batches(images, masks, outputs, batch_size):
        for name, values in per_image_metrics(original, output, mask).items():
            columns.setdefault(name, []).append(values)
    return {name: torch.cat(values) for name, values in columns.items()}


def score_completions(
    images: np.ndarray,
    masks: np.ndarray,
    outputs: np.ndarray,
    perceptual: PerceptualMetrics,
    ms_per_image: float,
    batch_size: int = 256,
    point_outputs: np.ndarray | None = None,
) -> dict[str, object]:
    """Headline and per-area-bucket test metrics, plus the reasons for any unavailable metric.

    `point_outputs` are the point-estimate completions of a sampling architecture (`complete_draws`);
    None: `outputs` are their own point estimate, and the point keys repeat the plain ones.
    """
    per_image = _per_image(images, masks, outputs, batch_size)
    point = None if point_outputs is None else _per_image(images, masks, point_outputs, batch_size)
    for original, output, _ in _scored_batches(images, masks, outputs, batch_size):
        perceptual.update(original, output)
    hole_fraction = torch.from_numpy(masks.reshape(len(masks), -1).mean(1, dtype=np.float64)).float()
    metrics = summarize(per_image, hole_fraction, perceptual.lpips_per_image(), perceptual.fid(), ms_per_image, point)
    unavailable = {f"test_{name}": reason for name, reason in perceptual.available.items() if reason}
    return {"metrics": metrics, "unavailable": unavailable}
