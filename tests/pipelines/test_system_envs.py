"""Every original system's environment (conf/<system>) runs end to end through `kedro run --env=<system>`.

The real datasets are not here, so each test writes a few generated images in the layout that the
environment's source reads, then runs the pipelines named in the environment file's header. The
runtime parameters only shrink the scale (epochs, workers, device); model blocks, losses, mask
geometry and image sizes stay the environment's own, since the point is that its configuration runs.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from PIL import Image, ImageDraw

from pixelheal.evaluation.grids import PAD_PX
from pixelheal.models import load
from pixelheal.models.checkpoint import read_checkpoint
from tests.conftest import PROJECT_ROOT, environment_parameters
from tests.data.test_torchvision_sources import _idx
from tests.pipelines.kedro_project import kedro, make_project

pytestmark = pytest.mark.slow

DATA = ["data_processing", "masks", "split"]


def _shapes(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """An RGB image: a flat background with a few random ellipses and rectangles, structure a model can learn."""

    def colour() -> tuple[int, ...]:
        return tuple(rng.integers(0, 256, 3).tolist())

    image = Image.new("RGB", size, colour())
    draw = ImageDraw.Draw(image)
    width, height = size
    for _ in range(4):
        x0, y0 = int(rng.integers(0, width * 3 // 4)), int(rng.integers(0, height * 3 // 4))
        box = (x0, y0, x0 + int(rng.integers(width // 8, width // 2)), y0 + int(rng.integers(height // 8, height // 2)))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour())
    return image


def _celeba(root: Path, rng: np.random.Generator) -> None:
    """Aligned CelebA JPEGs (178x218) in torchvision's layout; no partition file: all are train, by name."""
    folder = root / "data/01_raw/celeba/celeba/img_align_celeba"
    folder.mkdir(parents=True)
    for i in range(24):
        _shapes(rng, (178, 218)).save(folder / f"{i + 1:06d}.jpg", quality=90)


def _cifar10(root: Path, rng: np.random.Generator) -> None:
    """The CIFAR-10 sample's layout: train/ and test/ class folders of 32x32 PNGs (one class here)."""
    # 50 training images: the environment's 2 % validation share is then one image.
    for split, n in (("train", 50), ("test", 4)):
        folder = root / "data/01_raw/cifar10_sample" / split / "airplane"
        folder.mkdir(parents=True)
        for i in range(n):
            _shapes(rng, (32, 32)).save(folder / f"{i:04d}.png")


def _mnist(root: Path, rng: np.random.Generator) -> None:
    """torchvision's raw MNIST IDX files: torchvision checks only that they exist, then parses them."""
    raw = root / "data/01_raw/mnist/MNIST/raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 40), ("t10k", 8)):
        digits = np.zeros((n, 28, 28), np.uint8)
        for digit in digits:  # a bright stroke or two on black, as handwriting
            image = Image.fromarray(digit)
            draw = ImageDraw.Draw(image)
            for _ in range(2):
                draw.line(rng.integers(4, 24, 4).tolist(), fill=255, width=3)
            digit[:] = np.asarray(image)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(0x08, digits))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(0x08, np.arange(n) % 4))


def _paired64(root: Path, rng: np.random.Generator) -> None:
    """occluded/ and original/ 64x64 pairs matched by file name; the occluder is a flat rectangle."""
    pairs = root / "data/01_raw/pairs"
    (pairs / "occluded").mkdir(parents=True)
    (pairs / "original").mkdir()
    for i in range(24):
        original = _shapes(rng, (64, 64))
        occluded = original.copy()
        x, y = rng.integers(4, 36, 2).tolist()
        ImageDraw.Draw(occluded).rectangle((x, y, x + 20, y + 16), fill=(255, 0, 255))
        original.save(pairs / "original" / f"{i:03d}.png")
        occluded.save(pairs / "occluded" / f"{i:03d}.png")


def _cartoon(root: Path, rng: np.random.Generator) -> None:
    """Cartoon Set-sized 500x500 PNG faces in one folder (the environment centre-crops 300 and resizes to 36)."""
    folder = root / "data/01_raw/cartoonset"
    folder.mkdir(parents=True)
    for i in range(24):
        _shapes(rng, (500, 500)).save(folder / f"cs{i:04d}.png")


# Scale only: fewer epochs, no DataLoader worker processes, one CPU thread (the machine is shared).
def _small(*archs: str, epochs: int = 1, **training: Any) -> dict[str, Any]:
    block = {"epochs": epochs, "device": "cpu", "threads": 1, "num_workers": 0, **training}
    return {arch: {"training": block} for arch in archs} | {"evaluation": {"device": "cpu"}}


@dataclass(frozen=True)
class System:
    """One environment under test: how its data is written, its architectures and the scale-only parameters."""

    write_data: Callable[[Path, np.random.Generator], None]
    archs: tuple[str, ...]
    params: dict[str, Any]


SYSTEMS = {
    "celeba": System(_celeba, ("gan",), _small("gan")),
    # torchvision md5-checks CIFAR-10's pickled batches, which generated files cannot pass; the
    # environment's documented alternative, the CIFAR-10 sample's class folders, stands in for them.
    "cifar10": System(
        _cifar10,
        ("unet_frm", "unet_aspp"),
        _small("unet_frm", "unet_aspp")
        | {
            "data_processing": {
                "source": {
                    "kind": "image_folder",
                    "path": "data/01_raw/cifar10_sample/train",
                    "test_path": "data/01_raw/cifar10_sample/test",
                }
            }
        },
    ),
    # Two epochs, each with its grid of generated digits (the environment keeps 10 / 20 / 30).
    "mnist": System(_mnist, ("pixelcnn",), _small("pixelcnn", epochs=2, picture_epochs=[1, 2])),
    "paired64": System(_paired64, ("pixelheal",), _small("pixelheal", picture_epochs=[1])),
    "cartoon": System(_cartoon, ("rowrnn",), _small("rowrnn")),
}


@pytest.fixture(scope="module")
def system_run(tmp_path_factory) -> Callable[[str], tuple[Path, subprocess.CompletedProcess]]:
    """Run one environment's pipelines in a fresh project (once per module): (project root, the CLI's result)."""
    runs: dict[str, tuple[Path, subprocess.CompletedProcess]] = {}

    def run(env: str) -> tuple[Path, subprocess.CompletedProcess]:
        if env not in runs:
            system = SYSTEMS[env]
            root = make_project(tmp_path_factory.mktemp(env))
            shutil.copytree(PROJECT_ROOT / "conf" / env, root / "conf" / env)
            system.write_data(root, np.random.default_rng(0))
            # `--params` splits its value on commas, so a list (picture_epochs) cannot pass there; Kedro's
            # run configuration file takes the same runtime parameters as a mapping.
            (root / "run.yml").write_text(yaml.safe_dump({"run": {"params": system.params}}))
            pipelines = ",".join([*DATA, *(f"train_{arch}" for arch in system.archs)])
            runs[env] = root, kedro(root, "run", f"--env={env}", f"--pipelines={pipelines}", "--config=run.yml")
        return runs[env]

    return run


@pytest.mark.parametrize("env", sorted(SYSTEMS))
def test_the_environment_runs_end_to_end(system_run, env):
    root, result = system_run(env)
    assert result.returncode == 0, result.stderr[-3000:]
    configured = environment_parameters(env)
    for arch in SYSTEMS[env].archs:
        path = root / "data" / "06_models" / f"{arch}.pt"
        checkpoint = read_checkpoint(path)
        model = configured[arch]["model"]
        assert checkpoint.arch == model["kind"] == arch
        assert {k: v for k, v in checkpoint.hparams.items() if k != "in_channels"} == {
            k: v for k, v in model.items() if k != "kind"
        }
        load(path)  # the environment's model rebuilds from the file alone
        assert (root / "data" / "08_reporting" / "metrics" / f"{arch}.json").is_file()
        reporting = root / "data" / "08_reporting" / arch
        assert (reporting / "sample_grid.png").is_file()
        pictures = SYSTEMS[env].params[arch]["training"].get("picture_epochs", [])
        assert sorted(p.name for p in reporting.glob("progress/*.png")) == [f"epoch_{e:03d}.png" for e in pictures]


def _tiles(grid: np.ndarray, columns: int = 8) -> np.ndarray:
    """The square cells of an `image_grid`, without its white padding: (cells, side, side, 3)."""
    side = (grid.shape[1] - PAD_PX) // columns - PAD_PX
    starts = [PAD_PX + k * (side + PAD_PX) for k in range(columns)]
    rows = [PAD_PX + k * (side + PAD_PX) for k in range((grid.shape[0] - PAD_PX) // (side + PAD_PX))]
    return np.stack([grid[y : y + side, x : x + side] for y in rows for x in starts])


def test_mnist_generation_grids_are_mlflow_artifacts(system_run, tmp_path):
    root, result = system_run("mnist")
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "pixelheal"]
    (run,) = client.search_runs([experiment.experiment_id], "attributes.run_name = 'pixelcnn'")
    listed = [a.path for a in client.list_artifacts(run.info.run_id, "progress")]
    assert listed == ["progress/epoch_001.png", "progress/epoch_002.png"]
    for name in listed:
        grid = np.asarray(Image.open(client.download_artifacts(run.info.run_id, name, str(tmp_path))))
        ink = (_tiles(grid) > 127).mean()
        assert 0 < ink < 1, name  # digits drawn: neither a blank canvas nor a filled one
