"""Training faults through the real CLI: a diverged run, an impossible split and an empty resume leave every file as it was."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from tests.conftest import checksums
from tests.pipelines.kedro_project import kedro, make_project, refusal_line

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny project with its data prepared and one good pixelcnn checkpoint, metrics and resume state."""
    root = make_project(tmp_path_factory.mktemp("faults"))
    result = kedro(root, "run", "--env=tiny", "--pipelines=data_processing,masks,split,train_pixelcnn")
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_a_diverged_run_fails_in_one_line_and_keeps_the_previous_checkpoint_and_metrics(project):
    models = project / "data" / "06_models"
    assert {"pixelcnn.pt", "pixelcnn.state.pt"} <= set(checksums(models))
    before = checksums(project / "data")
    assert "08_reporting/metrics/pixelcnn.json" in before
    params = "pixelcnn.training.epochs=2,pixelcnn.training.lr=1e30,pixelcnn.training.optimizer=sgd"
    result = kedro(project, "run", "--env=tiny", "--pipelines=train_pixelcnn", f"--params={params}")
    assert "pixelcnn.training: training diverged in epoch 1 of 2 (train_loss is nan)" in refusal_line(result)
    assert checksums(project / "data") == before
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "pixelheal"]
    latest = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    assert latest[0].info.status == "FAILED"


def test_a_split_without_a_test_share_is_refused_before_anything_is_written(project):
    before = checksums(project / "data")
    params = "split.fractions.train=0.9,split.fractions.test=0"
    result = kedro(project, "run", "--env=tiny", "--pipelines=split,train_pixelcnn", f"--params={params}")
    assert "split.fractions.test: must be positive (or official_test: true)" in refusal_line(result)
    assert checksums(project / "data") == before


def test_resume_without_a_state_file_is_one_line_naming_the_file(project):
    before = checksums(project / "data")
    result = kedro(project, "run", "--env=tiny", "--pipelines=train_unet_frm", "--params=unet_frm.training.resume=true")
    line = refusal_line(result)
    assert "unet_frm.training.resume: true, but there is nothing to resume: no training state at " in line
    assert "unet_frm.state.pt" in line
    assert checksums(project / "data") == before
