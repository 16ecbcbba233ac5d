"""Comparison of architectures and baselines: a table, its markdown, and a bar chart.

Input is one summarize() dict per method (an architecture key or "baseline:<kind>").
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pixelheal.evaluation.registry import higher_is_better
from pixelheal.evaluation.summary import BUCKET_METRICS, HEADLINE_KEYS

logger = logging.getLogger(__name__)

SORT_KEY = "test_psnr_hole"  # the hole is what inpainting is judged on
CHART_KEYS: tuple[str, ...] = tuple(f"test_{m}" for m in BUCKET_METRICS)  # the per-image scores


def comparison_table(metrics: dict[str, dict[str, float | None]]) -> pd.DataFrame:
    """One row per method, the headline test_* columns, best test_psnr_hole first."""
    rows = {
        method: {key: (np.nan if values.get(key) is None else values[key]) for key in HEADLINE_KEYS}
        for method, values in metrics.items()
    }
    df = pd.DataFrame.from_dict(rows, orient="index", columns=list(HEADLINE_KEYS), dtype=float)
    df["test_n_images"] = df["test_n_images"].round().astype("Int64")  # a count, shown as one
    df.index.name = "method"
    # NaN last: a method without a hole score cannot outrank one with a score
    return df.sort_values(SORT_KEY, ascending=not higher_is_better(SORT_KEY), na_position="last", kind="stable")


def _format_cell(value: object) -> str:
    """Markdown text for one cell: n/a for missing, 4 decimals for floats."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4f}"
    return str(value).replace("|", "\\|")


def to_markdown(df: pd.DataFrame) -> str:
    """GitHub-flavoured markdown table of df (index as the first column), n/a for missing."""
    index_name = df.index.name or ""
    header = [index_name, *(str(c) for c in df.columns)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join([" --- "] + [" ---: "] * len(df.columns)) + "|",
    ]
    for label, row in zip(df.index, df.itertuples(index=False)):
        cells = [_format_cell(label), *(_format_cell(v) for v in row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def comparison_chart(df: pd.DataFrame) -> Figure:
    """Bar chart, one subplot per headline metric present (LPIPS only when computed)."""
    keys = [k for k in CHART_KEYS if k in df.columns and df[k].notna().any()]
    if not keys:
        raise ValueError(f"comparison table has none of the chart metrics {list(CHART_KEYS)}")
    methods = [str(m) for m in df.index]
    fig = Figure(figsize=(3.2 * len(keys), 3.6 + 0.12 * max(len(m) for m in methods)))
    axes = np.atleast_1d(fig.subplots(1, len(keys)))
    colours = [f"C{i % 10}" for i in range(len(methods))]
    for ax, key in zip(axes, keys):
        values = df[key].astype(float).to_numpy()
        ax.bar(range(len(methods)), np.nan_to_num(values, nan=0.0), color=colours)
        for x, v in enumerate(values):
            if math.isnan(v):
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize="small")
        arrow = "↑" if higher_is_better(key) else "↓"  # which direction is better
        ax.set_title(f"{key.removeprefix('test_')} {arrow}")
        ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right", fontsize="small")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
