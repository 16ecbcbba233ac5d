"""The web app in headless Chromium: upload an image and a mask (or paint one), get the inpainted image back.

Needs Chromium (Debian: `apt-get install chromium`) at /usr/bin/chromium and Playwright's Python
package (its own browser download is not used); skipped with the reason when either is missing.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.app.servers import free_port, wait_until_serving
from tests.inference.helpers import box_mask, random_image, write_checkpoint

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIZE = (48, 64)  # (H, W) of the uploaded image: not the checkpoints' 16x16 training size


class RecordingProxy:
    """A proxy that only counts connections: any outbound request the app server makes ends up here."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port, self.connections = self.server.getsockname()[1], 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """`python -m pixelheal.app` on a free port with two tiny checkpoints; all its outbound traffic proxied."""
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM} (Debian: apt-get install chromium)")
    pytest.importorskip(
        "playwright.sync_api", reason="Playwright's Python package is not installed (pip install playwright)"
    )
    root = tmp_path_factory.mktemp("app")
    (root / "models").mkdir()
    write_checkpoint(root / "models" / "unet_frm.pt")
    write_checkpoint(root / "models" / "unet_gray.pt", in_channels=1)
    proxy, port, log = RecordingProxy(), free_port(), root / "app.log"
    proxy_url = f"http://127.0.0.1:{proxy.port}"
    env = {
        **os.environ,
        "HTTP_PROXY": proxy_url,
        "HTTPS_PROXY": proxy_url,
        "ALL_PROXY": proxy_url,
        "http_proxy": proxy_url,
        "https_proxy": proxy_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "GRADIO_TEMP_DIR": str(root / "gradio"),
    }
    command = [
        sys.executable,
        "-m",
        "pixelheal.app",
        "--port",
        str(port),
        "--models-dir",
        str(root / "models"),
        "--mlflow-uri",
        "none",
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_serving(url, process, log)
        yield {"url": url, "root": root, "proxy": proxy}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        proxy.close()


@pytest.fixture(scope="module")
def browser(app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(app, browser):
    """A fresh page of the app that records the host of every request it makes."""
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.set_default_timeout(60_000)  # a loaded CI machine renders the Gradio page slowly
    page.hosts = set()
    page.on("request", lambda request: page.hosts.add(request.url.split("/")[2]))
    page.goto(app["url"])
    # The image editor draws on canvases; a file set before they exist is never uploaded.
    page.wait_for_selector("#image canvas")
    yield page
    page.close()


def upload_image(page, path: Path) -> None:
    """Put `path` into the image editor and wait until it is on the canvas.

    The editor offers its brush settings only once the image is loaded; pressing Inpaint before
    that sends no image (a busy machine shows this race).
    """
    page.locator("#image input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="Brush Size").wait_for()


def upload_mask(page, path: Path) -> None:
    """Put `path` into the mask component and wait until it shows it."""
    page.locator("#mask input[type=file]").set_input_files(str(path))
    page.wait_for_selector("#mask img")


def fetch_image(page, selector: str, timeout: float = 90) -> np.ndarray:
    """The image shown by the component `selector`, as served (not as scaled on screen).

    Waits until it has the uploaded image's size: on a busy machine the component can still show
    a previous or placeholder picture for a moment after the click. An error shown by the app
    fails at once, with its text.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.locator(f"{selector} img").count():
            src = page.locator(f"{selector} img").first.get_attribute("src")
            image = np.asarray(Image.open(io.BytesIO(page.request.get(src).body())))
            if image.shape[:2] == SIZE:
                return image
        errors = page.locator(".toast-body.error")
        if errors.count():
            pytest.fail(f"the app showed an error instead of {selector}: {errors.first.inner_text()}")
        page.wait_for_timeout(500)
    pytest.fail(f"no {SIZE[0]}x{SIZE[1]} image in {selector} within {timeout} s")


def test_upload_image_and_mask_shows_the_inpainted_image_and_the_comparison(app, page):
    image, mask = random_image(np.random.default_rng(0), *SIZE), box_mask(*SIZE)
    image.save(app["root"] / "image.png")
    Image.fromarray(mask * 255).save(app["root"] / "mask.png")
    upload_image(page, app["root"] / "image.png")
    upload_mask(page, app["root"] / "mask.png")
    page.click("#run")
    result = fetch_image(page, "#result")
    assert result.shape == (*SIZE, 3)
    assert np.array_equal(result[mask == 0], np.asarray(image)[mask == 0])
    assert (result[mask == 1] != np.asarray(image)[mask == 1]).any()
    page.wait_for_selector("#comparison img")
    assert page.locator("#comparison img").count() == 2
    assert "unet_frm (unet_gray)" in page.locator("#comparison").inner_text()
    assert page.hosts == {app["url"].split("/")[2]}  # every asset from the app itself: works offline
    assert app["proxy"].connections == 0  # and the server called out to nothing (no telemetry)


def test_painting_the_hole_with_the_brush_is_inpainted(app, page):
    random_image(np.random.default_rng(1), *SIZE).save(app["root"] / "image.png")
    upload_image(page, app["root"] / "image.png")
    page.get_by_role("button", name="Brush", exact=True).click()
    box = page.locator("#image canvas").last.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 20, y + 10, steps=5)
    page.mouse.up()
    page.click("#run")
    hole = fetch_image(page, "#mask-used") > 0
    result = fetch_image(page, "#result")
    assert 0 < hole.mean() < 1
    assert np.array_equal(result[~hole], np.asarray(Image.open(app["root"] / "image.png"))[~hole])


def test_inpainting_without_an_image_says_what_to_do(page):
    page.click("#run")
    page.get_by_text("upload an image first").first.wait_for()
