"""Runs that go wrong through the real CLI: one line, nothing changed, and MLflow says so."""

from __future__ import annotations

import hashlib
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image

from pixelheal.app.__main__ import parse_args, require_free_port
from tests.pipelines.kedro_project import PROJECT_ROOT, kedro, make_project, refusal_line

TRAIN = "--pipelines=data_processing,masks,split,train_unet_frm"


def _checksums(folder: Path, skip: tuple[str, ...] = ("mlflow.db",)) -> dict[str, str]:
    """sha256 of every file under `folder` by relative path, but `skip` and kedro-viz's run events (run records)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip and p.relative_to(folder).parts[0] != ".viz"
    }


def _runs(root: Path) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "pixelheal"]
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny project with unet_frm trained, the cifar10_cpu environment, and pictures (one a corrupt JPEG)."""
    root = make_project(tmp_path_factory.mktemp("faults"))
    shutil.copytree(PROJECT_ROOT / "conf" / "cifar10_cpu", root / "conf" / "cifar10_cpu")
    result = kedro(root, "run", "--env=tiny", TRAIN)
    assert result.returncode == 0, result.stderr[-3000:]
    pictures = root / "pictures"
    (pictures / "cats").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(pictures / "cats" / f"{i}.png")
    shutil.copytree(pictures / "cats", root / "photos")  # for inpaint: without the corrupt file
    (pictures / "cats" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG")
    hole = np.zeros((20, 24), np.uint8)
    hole[5:10, 6:14] = 255
    Image.fromarray(hole).save(root / "hole.png")
    return root


@pytest.mark.slow
def test_a_run_stopped_by_a_user_error_is_failed_in_mlflow_with_its_line(project):
    before = _checksums(project)
    source = "data_processing.source.kind=image_folder,data_processing.source.path=pictures"  # the sample's keys go
    result = kedro(project, "run", "--env=tiny", "--pipelines=data_processing", f"--params={source}")
    line = refusal_line(result)
    assert line.startswith("ingest_images failed: cannot read image file pictures/cats/bad.jpg")
    assert _checksums(project) == before
    latest = _runs(project)[0]
    assert (latest.info.run_name, latest.info.status) == ("data_processing", "FAILED")
    assert latest.data.tags["pixelheal.error"] == line and latest.data.tags["pixelheal.pid"].isdigit()


@pytest.mark.slow
def test_unknown_runtime_parameters_are_refused_before_any_run_opens(project):
    before, runs = _checksums(project), len(_runs(project))
    result = kedro(project, "run", "--env=tiny", "--pipelines=train_unet_frm", "--params=nosuchns.training.epochs=1")
    assert refusal_line(result).startswith(
        "nosuchns: unknown namespace in --params nosuchns.training.epochs; valid: ['compare', 'data_processing', "
    )
    assert _checksums(project) == before and len(_runs(project)) == runs


@pytest.mark.slow
def test_a_mistyped_environment_names_the_existing_ones(project):
    before = _checksums(project, skip=())
    result = kedro(project, "run", "--env=tinyy")
    assert refusal_line(result) == (
        "Unknown environment 'tinyy' (--env): there is no conf/tinyy folder; existing: base, cifar10_cpu, local, tiny"
    )
    assert _checksums(project, skip=()) == before


@pytest.mark.slow
def test_inpaint_under_an_environment_merges_its_params_and_needs_no_tracking_store(project, tmp_path):
    store = project / "mlflow.db"
    kept = tmp_path / "mlflow.db"
    shutil.move(store, kept)
    store.write_bytes(b"not a database " * 100)  # corrupt: inpaint does not track, training does
    try:
        before = _checksums(project, skip=())
        params = "inpaint.model=unet_frm,inpaint.images_dir=photos,inpaint.masks_dir=hole.png"
        output = tmp_path / "inpainted"
        result = kedro(
            project, "run", "--env=cifar10_cpu", "--pipelines=inpaint", f"--params={params},inpaint.output_dir={output}"
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert sorted(p.name for p in output.iterdir()) == ["0.png", "1.png"]
        refused = kedro(project, "run", "--env=tiny", "--pipelines=train_unet_frm")
        assert refusal_line(refused).startswith(
            f"MLflow tracking store {store} cannot be used (file is not a database): move the file aside"
        )
        assert _checksums(project, skip=()) == before  # the corrupt store too
    finally:
        shutil.move(kept, store)


def test_the_apps_port_must_be_a_port_number(capsys):
    for port in ("abc", "0", "70000"):
        with pytest.raises(SystemExit):
            parse_args(["--port", port])
        assert (
            capsys.readouterr()
            .err.strip()
            .splitlines()[-1]
            .startswith("python -m pixelheal.app: error: argument --port: must be")
        )


def test_a_port_in_use_is_named_inrefusal_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as error:
            require_free_port("127.0.0.1", port)
    assert str(error.value) == (
        f"--port {port}: cannot serve on 127.0.0.1:{port} (already in use); choose another with --port"
    )
    require_free_port("127.0.0.1", port)  # free again
