"""Lineage through the real CLI: training on data that no longer belongs together stops with one line."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from tests.conftest import checksums
from tests.pipelines.kedro_project import kedro, make_project, refusal_line

pytestmark = pytest.mark.slow

STALE_MASKS = (
    "masks was made from other images than data/03_primary/images.npy holds now: "
    "rerun `kedro run --pipelines=masks,split`"
)


def _runs(root) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    return client.search_runs([e.experiment_id for e in client.search_experiments()], order_by=["start_time DESC"])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny project with data, masks, split and one trained architecture."""
    root = make_project(tmp_path_factory.mktemp("lineage"))
    result = kedro(root, "run", "--env=tiny", "--pipelines=data_processing,masks,split,train_unet_frm")
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_changed_images_stop_training_and_evaluation_until_the_named_pipelines_ran(project):
    models = checksums(project / "data" / "06_models")
    # Other images made in the same run: training stops before its node, the MLflow run is FAILED.
    args = ("--pipelines=data_processing,train_unet_frm", "--params=data_processing.source.n_images=100")
    result = kedro(project, "run", "--env=tiny", *args)
    assert refusal_line(result) == STALE_MASKS
    assert "Running node: unet_frm.train" not in result.stdout
    assert checksums(project / "data" / "06_models") == models
    latest = _runs(project)[0]
    assert latest.info.status == "FAILED" and latest.data.tags["pixelheal.error"] == STALE_MASKS

    # Training alone stops before any node and before MLflow opens a run; no file changes.
    before, runs = checksums(project / "data"), len(_runs(project))
    result = kedro(project, "run", "--env=tiny", "--pipelines=train_unet_frm")
    assert refusal_line(result) == STALE_MASKS and "Running node" not in result.stdout
    assert checksums(project / "data") == before
    assert len(_runs(project)) == runs

    # After the named rerun, the checkpoint is what no longer belongs to the data.
    result = kedro(project, "run", "--env=tiny", "--pipelines=masks,split")
    assert result.returncode == 0, result.stderr[-3000:]
    before = checksums(project / "data")
    result = kedro(project, "run", "--env=tiny", "--nodes=unet_frm.evaluate")
    assert refusal_line(result) == (
        "unet_frm.checkpoint was made from other images than data/03_primary/images.npy holds now: "
        "rerun `kedro run --pipelines=train_unet_frm`"
    )
    assert checksums(project / "data") == before
