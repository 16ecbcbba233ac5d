"""Pictures of results: a sample grid (original / mask / masked input / inpainted) and loss curves.

contract: images are uint8 N×C×H×W (C = 1 or 3); masks uint8 N×1×H×W with 1 = hole.
Figures are drawn on a pyplot-free ``matplotlib.figure.Figure`` rendered by Agg, so nothing
touches the caller's pyplot state or backend and no figure is left open.
"""

from __future__ import annotations

import io
import logging
import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)

MIN_CELL_PX = 96  # tiny images are upscaled (nearest) so a 32 px row stays readable
PAD_PX = 2  # white gap between cells
HEADER_PX = 14  # row of column titles
HOLE_GREY = 128  # how a hole looks in the "masked input" column


def _to_hwc_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) uint8 -> (H, W, 3) uint8; grayscale repeated."""
    hwc = np.transpose(image, (1, 2, 0))  # (H, W, C)
    return np.repeat(hwc, 3, axis=2) if hwc.shape[2] == 1 else hwc


def _check_grid_inputs(originals: np.ndarray, masks: np.ndarray, outputs: list[np.ndarray]) -> None:
    """Raise ValueError unless inputs follow the uint8 N×C×H×W / N×1×H×W contract."""
    if originals.ndim != 4 or originals.shape[1] not in (1, 3) or originals.dtype != np.uint8:
        raise ValueError(f"originals must be uint8 N×C×H×W with C in (1, 3), got {originals.dtype} {originals.shape}")
    n, _, h, w = originals.shape
    if masks.shape != (n, 1, h, w):
        raise ValueError(f"masks must have shape {(n, 1, h, w)}, got {masks.shape}")
    for i, out in enumerate(outputs):
        if out.shape != originals.shape or out.dtype != np.uint8:
            raise ValueError(f"outputs[{i}] must be uint8 with shape {originals.shape}, got {out.dtype} {out.shape}")


def _row_cells(original: np.ndarray, mask: np.ndarray, outputs: list[np.ndarray]) -> list[np.ndarray]:
    """The (H, W, 3) cells of one row: original, mask, masked input, then each output."""
    rgb = _to_hwc_rgb(original)
    hole = mask[0] > 0  # (H, W)
    mask_cell = np.repeat((hole * 255).astype(np.uint8)[:, :, None], 3, axis=2)  # white = hole
    masked = rgb.copy()
    masked[hole] = HOLE_GREY
    return [rgb, mask_cell, masked, *(_to_hwc_rgb(out) for out in outputs)]


def _headers(n_outputs: int) -> list[str]:
    """Column titles matching _row_cells."""
    names = ["original", "mask", "masked input"]
    if n_outputs == 1:
        return [*names, "inpainted"]
    return [*names, *(f"sample {k + 1}" for k in range(n_outputs))]


def sample_grid(
    originals: np.ndarray,
    masks: np.ndarray,
    outputs: np.ndarray | list[np.ndarray],
    n: int = 8,
) -> Image.Image:
    """RGB grid: one row per image (first n), columns original / mask / masked input / output(s)."""
    outs = list(outputs) if isinstance(outputs, list) else [np.asarray(outputs)]
    originals, masks = np.asarray(originals), np.asarray(masks)
    outs = [np.asarray(o) for o in outs]
    _check_grid_inputs(originals, masks, outs)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rows = min(n, originals.shape[0])
    h, w = originals.shape[2:]
    scale = max(1, math.ceil(MIN_CELL_PX / min(h, w)))
    cell_h, cell_w, cols = h * scale, w * scale, 3 + len(outs)
    width = cols * cell_w + (cols + 1) * PAD_PX
    height = HEADER_PX + rows * cell_h + (rows + 1) * PAD_PX
    grid = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(grid)
    for c, title in enumerate(_headers(len(outs))):
        draw.text((PAD_PX + c * (cell_w + PAD_PX), 1), title, fill="black")
    for r in range(rows):
        cells = _row_cells(originals[r], masks[r], [o[r] for o in outs])
        y = HEADER_PX + PAD_PX + r * (cell_h + PAD_PX)
        for c, cell in enumerate(cells):
            tile = Image.fromarray(cell).resize((cell_w, cell_h), Image.Resampling.NEAREST)
            grid.paste(tile, (PAD_PX + c * (cell_w + PAD_PX), y))
    return grid


def figure_to_image(fig: Figure, dpi: int = 100) -> Image.Image:
    """Render a matplotlib figure to an RGB PIL image."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    buffer.seek(0)
    with Image.open(buffer) as image:
        return image.convert("RGB")


def loss_curve(history: pd.DataFrame) -> Image.Image:
    """One line per loss column of `history` (train_* and val_*) against its "epoch" column."""
    if "epoch" not in history.columns:
        raise ValueError(f"history needs an 'epoch' column, got columns {list(history.columns)}")
    losses = [c for c in history.columns if c != "epoch"]
    if not losses:
        raise ValueError("history has no loss columns besides 'epoch'")
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for column in losses:
        # val_* dashed so a train/val pair of the same loss reads as one colour family
        style = "--" if str(column).startswith("val_") else "-"
        ax.plot(history["epoch"], history[column], style, marker="o", markersize=3, label=column)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure_to_image(fig)


def image_grid(images: np.ndarray, columns: int = 8) -> Image.Image:
    """Tile uint8 N×C×H×W images into rows of `columns`, upscaled like the sample grid."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(
            f"images must be a non-empty uint8 N×C×H×W array with C in (1, 3), got {images.dtype} {images.shape}"
        )
    n, _, h, w = images.shape
    scale = max(1, math.ceil(MIN_CELL_PX / 2 / min(h, w)))
    cols, rows = min(columns, n), math.ceil(n / columns)
    grid = Image.new("RGB", (cols * (w * scale + PAD_PX) + PAD_PX, rows * (h * scale + PAD_PX) + PAD_PX), "white")
    for i, image in enumerate(images):
        tile = Image.fromarray(_to_hwc_rgb(image)).resize((w * scale, h * scale), Image.Resampling.NEAREST)
        grid.paste(tile, (PAD_PX + (i % cols) * (w * scale + PAD_PX), PAD_PX + (i // cols) * (h * scale + PAD_PX)))
    return grid
