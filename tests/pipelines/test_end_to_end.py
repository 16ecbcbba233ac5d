"""End-to-end `kedro run`s through the real CLI on a tiny copy of the project."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from mlflow import MlflowClient

from pixelheal.models import ARCHITECTURES
from tests.app.servers import post, serving
from tests.conftest import checksums
from tests.inference.helpers import box_mask
from tests.pipelines.kedro_project import kedro, make_project

pytestmark = pytest.mark.slow

ARCHS = tuple(ARCHITECTURES)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny project after one default `kedro run`."""
    root = make_project(tmp_path_factory.mktemp("project"))
    result = kedro(root, "run", "--env=tiny")
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_registry_lists_the_pipelines(tmp_path):
    result = kedro(make_project(tmp_path), "registry", "list")
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("data_processing", "masks", "split", "compare", *(f"train_{a}" for a in ARCHS)):
        assert f"- {name}" in result.stdout


def test_training_a_fresh_project_names_the_command_to_run_first(tmp_path):
    result = kedro(make_project(tmp_path), "run", "--env=tiny", "--pipeline=train_unet_aspp")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    last_line = result.stderr.strip().splitlines()[-1]
    assert "kedro run --pipelines=data_processing,masks,split" in last_line
    assert not (tmp_path / "data" / "06_models" / "unet_aspp.pt").exists()


def test_default_run_writes_reports(project):
    reporting = project / "data" / "08_reporting"
    for name in ("comparison.csv", "comparison.md", "comparison.png", "images_preview.png", "masks_preview.png"):
        assert (reporting / name).is_file(), name
    for arch in ARCHS:
        assert (reporting / arch / "sample_grid.png").is_file()
        assert (reporting / arch / "loss_curve.png").is_file()
        assert (project / "data" / "06_models" / f"{arch}.pt").is_file()
    table = (reporting / "comparison.md").read_text()
    for method in (*ARCHS, "baseline:telea", "baseline:biharmonic"):
        assert method in table


def test_mlflow_holds_one_child_run_per_architecture_with_the_same_test_keys(project):
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "pixelheal"]
    runs = client.search_runs([experiment.experiment_id])
    children = {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert sorted(children) == sorted(ARCHS)
    (parent,) = [r for r in runs if r.info.run_id == children["gan"].data.tags["mlflow.parentRunId"]]
    assert {"comparison.csv", "comparison.md", "comparison.png"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id)
    }
    assert parent.data.params["masks.generator.kind"] == "irregular"  # kedro-mlflow logs the run's parameters
    # Sampling architectures add their likelihood (test_nll_bpd); every other test_* key is shared.
    keysets = [{k for k in r.data.metrics if k.startswith("test_")} - {"test_nll_bpd"} for r in children.values()]
    assert all(keys == keysets[0] for keys in keysets)
    assert {"test_psnr", "test_ssim", "test_psnr_hole", "test_l1_hole", "test_edge_error"} <= keysets[0]
    assert "test_nll_bpd" in children["rowrnn"].data.metrics and "test_nll_bpd" in children["pixelcnn"].data.metrics
    for arch, run in children.items():
        assert run.data.tags["architecture"] == arch
        assert {"dataset", "mask_generator", "git_commit"} <= set(run.data.tags)
        assert run.data.params["model.kind"] == arch
        history = client.get_metric_history(run.info.run_id, "train_loss")
        assert sorted(m.step for m in history) == [1, 2]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {f"{arch}.pt", "sample_grid.png", "loss_curve.png"} <= artifacts
        assert "unavailable.test_lpips" in run.data.tags  # empty torch hub cache: reported, not faked
    gan_losses = {f"train_{k}" for k in ("adversarial", "l1", "edge", "ssim", "d_loss", "g_loss")}
    for key in gan_losses:
        steps = [m.step for m in client.get_metric_history(children["gan"].info.run_id, key)]
        assert sorted(steps) == [1, 2], key


def test_each_architecture_is_a_registered_model_linked_to_its_run_and_commit(project):
    import mlflow

    from pixelheal.inference import load_inpainter
    from pixelheal.inference.mlflow_model import inpaint_arrays

    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert sorted(m.name for m in client.search_registered_models()) == sorted(f"pixelheal-{a}" for a in ARCHS)
    (experiment,) = [e for e in client.search_experiments() if e.name == "pixelheal"]
    runs = client.search_runs([experiment.experiment_id])
    children = {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    for arch in ARCHS:
        (version,) = client.search_model_versions(f"name = 'pixelheal-{arch}'")
        run = children[arch]
        commit = run.data.tags["git_commit"]
        assert (version.version, version.run_id, version.tags["git_commit"]) == (1, run.info.run_id, commit)
        assert version.tags["kedro_run_id"] == run.data.tags["mlflow.parentRunId"]
        assert run.info.run_id in version.description and commit in version.description
        (model,) = client.search_logged_models([experiment.experiment_id], f"source_run_id = '{run.info.run_id}'")
        assert version.source == f"models:/{model.model_id}"
    # The registered model is this run's checkpoint: it inpaints as the checkpoint file does.
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        served = mlflow.pyfunc.load_model("models:/pixelheal-gan/1")
    finally:
        mlflow.set_tracking_uri(previous)
    rng = np.random.default_rng(0)
    data = {"image": rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8), "mask": np.zeros((2, 16, 16), np.uint8)}
    data["mask"][:, 4:10, 5:12] = 1
    out = served.predict(data)
    assert np.array_equal(out, inpaint_arrays(load_inpainter(project / "data" / "06_models" / "gan.pt"), data))
    assert np.array_equal(out[data["mask"] == 0], data["image"][data["mask"] == 0])


def test_a_registered_model_served_over_rest_inpaints_a_posted_image_and_mask(project):
    tracking_uri = f"sqlite:///{project / 'mlflow.db'}"
    size = (20, 24)  # (H, W): not the 16x16 training size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, *size, 3), dtype=np.uint8)
    mask = box_mask(*size)[None] * 255  # (1, H, W): 255 = hole, as in mask files
    with serving("models:/pixelheal-unet_frm/1", tracking_uri, project) as url:
        status, answer = post(f"{url}/invocations", {"inputs": {"image": image.tolist(), "mask": mask.tolist()}})
        assert status == 200, answer
        out = np.asarray(answer["predictions"], dtype=np.int64)
        known = mask == 0
        assert out.shape == image.shape
        assert np.array_equal(out[known], image[known]) and (out[~known] != image[~known]).any()
        status, answer = post(f"{url}/invocations", {"inputs": {"image": image.tolist(), "mask": mask[:, :5].tolist()}})
        assert status == 400 and "mask: expected the images' (N, H, W) (1, 20, 24)" in answer["message"]


def test_rerunning_evaluate_alone_reproduces_the_metrics(project):
    path = project / "data" / "08_reporting" / "metrics" / "unet_aspp.json"
    before = json.loads(path.read_text())["metrics"]
    result = kedro(project, "run", "--env=tiny", "--nodes=unet_aspp.evaluate")
    assert result.returncode == 0, result.stderr[-3000:]
    after = json.loads(path.read_text())["metrics"]
    before.pop("test_ms_per_image"), after.pop("test_ms_per_image")
    assert after == before


def _digests(root):
    files = [
        "03_primary/images.npy",
        "03_primary/image_metadata.csv",
        "04_feature/masks.npy",
        "04_feature/mask_metadata.csv",
        "05_model_input/split_indices.json",
    ]
    return {f: hashlib.sha256((root / "data" / f).read_bytes()).hexdigest() for f in files}


def test_data_pipelines_rerun_byte_identical(project):
    before = _digests(project)
    result = kedro(project, "run", "--env=tiny", "--pipelines=data_processing,masks,split")
    assert result.returncode == 0, result.stderr[-3000:]
    assert _digests(project) == before


@pytest.mark.parametrize(
    "pipeline, params, message",
    [
        ("train_unet_frm", "unet_frm.training.lr=-1", "unet_frm.training.lr: must be positive, got -1.0"),
        ("train_unet_frm", "unet_frm.training.epoch=3", "unet_frm.training.epoch: unknown parameter; valid: ["),
        ("train_unet_frm", "unet_frm.training.epochs=abc", "unet_frm.training.epochs: expected an integer, got 'abc'"),
        ("train_gan", "gan.model.base_channel=8", "gan.model.base_channel: unknown parameter; valid: ["),
        ("masks", "masks.generator.kind=blobs", "masks.generator.kind: unknown mask generator 'blobs'; valid: ["),
    ],
)
def test_a_bad_parameter_stops_before_the_first_node_with_one_line_naming_it(project, pipeline, params, message):
    before = checksums(project / "data")
    result = kedro(project, "run", "--env=tiny", f"--pipeline={pipeline}", f"--params={params}")
    assert result.returncode != 0
    output = result.stderr + result.stdout
    assert "Traceback" not in output and "Running node" not in output
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert checksums(project / "data") == before
