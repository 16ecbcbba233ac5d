"""notebooks/compare_runs.ipynb runs top to bottom against the MLflow store of a tiny `kedro run`."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from mlflow import MlflowClient
from nbclient import NotebookClient

from tests.pipelines.kedro_project import kedro, make_project

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "compare_runs.ipynb"


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> str:
    """The MLflow store of a tiny project after one default `kedro run`."""
    root = make_project(tmp_path_factory.mktemp("project"))
    result = kedro(root, "run", "--env=tiny")
    assert result.returncode == 0, result.stderr[-3000:]
    return f"sqlite:///{root / 'mlflow.db'}"


def execute(tracking_uri: str, monkeypatch) -> nbformat.NotebookNode:
    """Run the notebook from notebooks/ (where Jupyter starts it) with the store set by environment."""
    monkeypatch.setenv("PIXELHEAL_MLFLOW_URI", tracking_uri)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode, mime: str) -> list[str]:
    return [
        out["data"][mime]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if mime in out.get("data", {})
    ]


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(
        not cell.get("outputs") and cell.get("execution_count") is None
        for cell in notebook.cells
        if cell.cell_type == "code"
    )


def test_notebook_shows_the_table_curves_and_grids(tracking_uri, monkeypatch):
    client = MlflowClient(tracking_uri=tracking_uri)
    archs = {
        r.data.tags["architecture"]
        for r in client.search_runs([client.get_experiment_by_name("pixelheal").experiment_id])
        if "architecture" in r.data.tags
    }
    assert {"unet_frm", "unet_aspp"} <= archs
    notebook = execute(tracking_uri, monkeypatch)
    tables = outputs(notebook, "text/html")
    assert any(all(arch in t for arch in archs) and "test_psnr" in t for t in tables)
    assert any("test_psnr_area_" in t for t in tables)
    assert len(outputs(notebook, "image/png")) == 1 + len(
        archs
    )  # the loss curves, then one sample grid per architecture


def test_notebook_says_what_to_run_when_the_store_is_missing(tmp_path, monkeypatch):
    from nbclient.exceptions import CellExecutionError

    with pytest.raises(CellExecutionError, match="run `kedro run` first"):
        execute(f"sqlite:///{tmp_path / 'mlflow.db'}", monkeypatch)
    assert not (tmp_path / "mlflow.db").exists()
