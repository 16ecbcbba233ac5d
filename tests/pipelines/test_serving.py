"""`mlflow models serve` of a registered PixelHeal model answers REST requests on loopback with inpainted images."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.app.servers import free_port, wait_until_serving
from tests.inference.helpers import box_mask, write_checkpoint

pytestmark = pytest.mark.slow

SIZE = (20, 24)  # (H, W) of the request images: not the checkpoint's 16x16 training size


@contextmanager
def serving(model_uri: str, tracking_uri: str, root: Path) -> Iterator[str]:
    """`mlflow models serve` of `model_uri` on a free loopback port; its URL. Stopped by its process group."""
    port, log = free_port(), root / "serve.log"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow_cli), "models", "serve", "-m", model_uri, "--env-manager", "local"]
    # MLflow's usage telemetry is off: the test must not call out.
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [*command, "-p", str(port), "-h", "127.0.0.1"],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the server's workers stop with it
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(f"{url}/ping", process, log, timeout=180)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def post(url: str, body: dict) -> tuple[int, dict]:
    """POST `body` as JSON; the status and the JSON answer (an error answer too)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> tuple[str, Path]:
    """A store holding `pixelheal-unet_frm` version 1: a tiny checkpoint registered as the hooks register one."""
    import mlflow

    from pixelheal.inference.mlflow_model import log_inpainting_model

    root = tmp_path_factory.mktemp("serving")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        experiment = mlflow.create_experiment("pixelheal", artifact_location=(root / "mlruns").as_uri())
        run = mlflow.MlflowClient().create_run(experiment, run_name="unet_frm").info.run_id
        version = log_inpainting_model(write_checkpoint(root / "unet_frm.pt"), run, "pixelheal-unet_frm", {}, "")
    finally:
        mlflow.set_tracking_uri(previous)
    assert version.version == 1
    return tracking_uri, root


def test_a_served_registered_model_inpaints_a_posted_image_and_mask(registered):
    tracking_uri, root = registered
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, *SIZE, 3), dtype=np.uint8)
    mask = box_mask(*SIZE)[None] * 255  # (1, H, W): 255 = hole, as in mask files
    with serving("models:/pixelheal-unet_frm/1", tracking_uri, root) as url:
        status, answer = post(f"{url}/invocations", {"inputs": {"image": image.tolist(), "mask": mask.tolist()}})
        assert status == 200, answer
        out = np.asarray(answer["predictions"], dtype=np.int64)
        known = mask == 0
        assert out.shape == image.shape
        assert np.array_equal(out[known], image[known]) and (out[~known] != image[~known]).any()
        status, answer = post(f"{url}/invocations", {"inputs": {"image": image.tolist(), "mask": mask[:, :5].tolist()}})
        assert status == 400 and "mask: expected the images' (N, H, W) (1, 20, 24)" in answer["message"]
