"""Data-parallel training through the real CLI: `kedro run` with world_size 2 gives one run, one checkpoint, one state."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from tests.pipelines.kedro_project import kedro, make_project

pytestmark = pytest.mark.slow

ARCHS = ("unet_frm", "gan")


def test_two_ranks_per_architecture_log_one_mlflow_run_and_write_one_checkpoint_and_state(tmp_path):
    root = make_project(tmp_path)
    params = ",".join(
        f"{arch}.training.distributed.{key}={value}"
        for arch in ARCHS
        for key, value in (("world_size", 2), ("master_port", 0), ("timeout_s", 120))
    )
    pipelines = ",".join(["data_processing", "masks", "split", *(f"train_{arch}" for arch in ARCHS)])
    result = kedro(root, "run", "--env=tiny", f"--pipelines={pipelines}", f"--params={params}")
    assert result.returncode == 0, result.stderr[-3000:]

    models = sorted(p.name for p in (root / "data" / "06_models").iterdir() if p.suffix == ".pt")
    assert models == sorted(f"{arch}{suffix}" for arch in ARCHS for suffix in (".pt", ".state.pt"))
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "pixelheal"]
    runs = client.search_runs([experiment.experiment_id])
    names = sorted(r.info.run_name for r in runs if "mlflow.parentRunId" in r.data.tags)
    assert names == sorted(ARCHS)  # one child run per architecture, not one per rank
    assert all(r.info.status == "FINISHED" for r in runs)
