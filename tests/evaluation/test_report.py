"""Tests for the comparison table, its markdown and chart."""

import math

import pytest
from matplotlib.figure import Figure

from pixelheal.evaluation.report import comparison_chart, comparison_table, to_markdown
from pixelheal.evaluation.summary import HEADLINE_KEYS


def _metrics(psnr_hole: float | None, lpips: float | None = 0.1) -> dict[str, float | None]:
    base = {k: 1.0 for k in HEADLINE_KEYS}
    base.update(test_psnr_hole=psnr_hole, test_lpips=lpips, test_n_images=10, test_fid=None)
    base["test_psnr_area_00_10"] = 5.0  # bucket variants must not become columns
    return base


@pytest.fixture()
def table():
    return comparison_table(
        {
            "unet_frm": _metrics(25.0),
            "baseline:telea": _metrics(None, lpips=None),
            "gan": _metrics(31.123456),
        }
    )


def test_table_rows_columns_and_sorting(table):
    assert list(table.index) == ["gan", "unet_frm", "baseline:telea"]  # NaN sorts last
    assert list(table.columns) == list(HEADLINE_KEYS)
    assert table.index.name == "method"
    assert math.isnan(table.loc["baseline:telea", "test_psnr_hole"])
    assert table["test_fid"].isna().all()


def test_markdown_format(table):
    lines = to_markdown(table).strip().split("\n")
    assert lines[0] == "| method | " + " | ".join(HEADLINE_KEYS) + " |"
    assert lines[1].startswith("| --- | ---: |")
    assert len(lines) == 2 + 3
    gan = lines[2].split(" | ")
    assert gan[0] == "| gan"
    assert gan[1 + list(HEADLINE_KEYS).index("test_psnr_hole")] == "31.1235"
    assert gan[1 + list(HEADLINE_KEYS).index("test_fid")] == "n/a"
    assert lines[2].endswith("| 10 |")  # the image count stays an integer
    assert "n/a" in lines[4] and "baseline:telea" in lines[4]


def test_chart_has_one_axis_per_present_metric(table):
    fig = comparison_chart(table)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 6 and titles[-1].startswith("lpips")
    assert len(fig.axes[0].patches) == 3  # a bar per method
    no_lpips = comparison_chart(table.drop(columns="test_lpips"))
    assert len(no_lpips.axes) == 5


def test_chart_arrows_follow_the_registry(table):
    titles = dict(ax.get_title().split() for ax in comparison_chart(table).axes)
    assert titles == {"psnr": "↑", "ssim": "↑", "l1_hole": "↓", "psnr_hole": "↑", "edge_error": "↓", "lpips": "↓"}
