"""Per-image reconstruction metrics and hole-area buckets.

contract: images are float tensors or numpy arrays in [0, 1], shape N×C×H×W (C = 1 or 3);
masks are N×1×H×W with 1 = hole (missing), 0 = known. Outputs are already composited
(``out = mask * pred + (1 - mask) * image``) before they are scored.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

logger = logging.getLogger(__name__)

# (lo, hi, label) in percent of the image area; lo inclusive, hi exclusive (the last one inclusive).
AREA_BUCKETS: list[tuple[float, float, str]] = [
    (0.0, 10.0, "00_10"),
    (10.0, 20.0, "10_20"),
    (20.0, 30.0, "20_30"),
    (30.0, 40.0, "30_40"),
    (40.0, 50.0, "40_50"),
    (50.0, 100.0, "50_100"),
]

# Identical images have MSE 0 and an infinite PSNR; clamping the MSE at 1e-10 caps PSNR at
# exactly 100 dB (data_range 1) so means over a test set stay finite.
PSNR_CAP_DB = 100.0
_MSE_FLOOR = 10.0 ** (-PSNR_CAP_DB / 10.0)
# Images are scored in chunks so a whole test set never needs a float64 copy in memory.
_CHUNK = 256
# torchmetrics' default Gaussian SSIM window; smaller images cannot be scored with it.
SSIM_WINDOW = 11
# ITU-R BT.601 luma weights, the usual RGB -> grayscale conversion.
_LUMA = (0.299, 0.587, 0.114)


def area_bucket(hole_fraction: float) -> str:
    """Label of the AREA_BUCKETS bucket holding a hole fraction in [0, 1]."""
    if not 0.0 <= hole_fraction <= 1.0 or math.isnan(hole_fraction):
        raise ValueError(f"hole_fraction must be in [0, 1], got {hole_fraction}")
    # Compare fractions (not fraction * 100) so 0.3 lands in "30_40" despite float rounding.
    for lo, hi, label in AREA_BUCKETS:
        if lo / 100.0 <= hole_fraction < hi / 100.0:
            return label
    return AREA_BUCKETS[-1][2]  # hole_fraction == 1.0


def hole_fractions(masks: Tensor | np.ndarray) -> Tensor:
    """Fraction of hole pixels per image, (N,) float64."""
    m = torch.as_tensor(masks)
    if m.ndim != 4 or m.shape[1] != 1:
        raise ValueError(f"masks must be N×1×H×W, got shape {tuple(m.shape)}")
    return (m > 0.5).double().mean(dim=(1, 2, 3))  # (N,)


def _as_tensor(x: Tensor | np.ndarray, name: str) -> Tensor:
    """Tensor view (no copy) of an N×C×H×W float array, checked against the contract."""
    t = torch.as_tensor(x).detach()
    if t.ndim != 4:
        raise ValueError(f"{name} must be N×C×H×W, got shape {tuple(t.shape)}")
    if name != "masks" and not t.is_floating_point():
        # uint8 in [0, 255] would silently give nonsense PSNRs
        raise ValueError(f"{name} must be float in [0, 1], got dtype {t.dtype} (divide by 255)")
    return t


def _check_shapes(originals: Tensor, outputs: Tensor, masks: Tensor) -> None:
    """Raise ValueError unless the three arrays agree on the N×C×H×W contract."""
    if originals.shape != outputs.shape:
        raise ValueError(f"outputs shape {tuple(outputs.shape)} differs from originals {tuple(originals.shape)}")
    if originals.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {originals.shape[1]}")
    n, _, h, w = originals.shape
    if min(h, w) < SSIM_WINDOW:
        raise ValueError(f"images must be at least {SSIM_WINDOW} px per side for SSIM, got {h}x{w}")
    if tuple(masks.shape) != (n, 1, h, w):
        raise ValueError(f"masks must have shape {(n, 1, h, w)}, got {tuple(masks.shape)}")


def _psnr_from_mse(mse: Tensor) -> Tensor:
    """PSNR in dB for data_range 1, capped at PSNR_CAP_DB; NaN MSE stays NaN."""
    return 10.0 * torch.log10(1.0 / mse.clamp(min=_MSE_FLOOR))


def _luminance(x: Tensor) -> Tensor:
    """(N, 1, H, W) luma of an RGB or grayscale batch."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(_LUMA, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)  # (N, 1, H, W)


def sobel_magnitude(x: Tensor) -> Tensor:
    """Sobel gradient magnitude of the luminance, (N, 1, H, W)."""
    gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype)
    kernel = torch.stack([gx, gx.T]).unsqueeze(1)  # (2, 1, 3, 3): d/dx, d/dy
    # Replicate padding: a constant image has zero gradient at its border too.
    y = F.pad(_luminance(x), (1, 1, 1, 1), mode="replicate")  # (N, 1, H+2, W+2)
    g = F.conv2d(y, kernel)  # (N, 2, H, W)
    return torch.sqrt((g**2).sum(dim=1, keepdim=True))  # (N, 1, H, W)


def _chunk_metrics(orig: Tensor, out: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """All per-image metrics for one float64 chunk."""
    c = orig.shape[1]
    diff = out - orig  # (n, C, H, W)
    mse = diff.pow(2).mean(dim=(1, 2, 3))  # (n,)
    hole = (mask > 0.5).to(orig.dtype)  # (n, 1, H, W)
    # Each hole pixel counts once per channel; an empty hole gives 0/0 = NaN on purpose.
    n_hole = hole.sum(dim=(1, 2, 3)) * c  # (n,)
    n_hole = torch.where(n_hole > 0, n_hole, torch.full_like(n_hole, float("nan")))
    l1_hole = (diff.abs() * hole).sum(dim=(1, 2, 3)) / n_hole
    mse_hole = (diff.pow(2) * hole).sum(dim=(1, 2, 3)) / n_hole
    ssim = structural_similarity_index_measure(out, orig, data_range=1.0, reduction="none")
    edge = (sobel_magnitude(out) - sobel_magnitude(orig)).abs().mean(dim=(1, 2, 3))
    return {
        "psnr": _psnr_from_mse(mse),
        "ssim": ssim.reshape(-1),
        "l1_hole": l1_hole,
        "psnr_hole": _psnr_from_mse(mse_hole),
        "edge_error": edge,
    }


def per_image_metrics(
    originals: Tensor | np.ndarray, outputs: Tensor | np.ndarray, masks: Tensor | np.ndarray
) -> dict[str, Tensor]:
    """Per-image psnr, ssim, l1_hole, psnr_hole and edge_error, each a (N,) float64 tensor.

    PSNR is capped at PSNR_CAP_DB (identical images); hole metrics are NaN for an empty hole.
    """
    # contract: float images in [0, 1], N×C×H×W; masks N×1×H×W with 1 = hole
    orig, out, mask = (
        _as_tensor(originals, "originals"),
        _as_tensor(outputs, "outputs"),
        _as_tensor(masks, "masks"),
    )
    _check_shapes(orig, out, mask)
    # float64 per chunk: exact enough for the 100 dB cap without copying the whole set
    parts = [
        _chunk_metrics(*(t[i : i + _CHUNK].to("cpu", torch.float64) for t in (orig, out, mask)))
        for i in range(0, orig.shape[0], _CHUNK)
    ]
    if not parts:
        raise ValueError("originals is empty: no images to score")
    return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
