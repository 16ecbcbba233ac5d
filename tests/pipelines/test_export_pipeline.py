"""The export pipeline: registry wiring, its parameter block, its node, and `kedro run --pipeline=export`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import yaml

from pixelheal.datasets import BytesDataset
from pixelheal.pipeline_registry import register_pipelines
from pixelheal.pipelines.export.nodes import export_checkpoint, export_parameters
from tests.conftest import checksums
from tests.inference.helpers import write_checkpoint
from tests.pipelines.kedro_project import kedro, make_project

BASE = Path(__file__).resolve().parents[2] / "conf" / "base" / "parameters_export.yml"


def _block(folder: Path, **changes) -> dict:
    return yaml.safe_load(BASE.read_text())["export"] | {"model": "unet_frm", "models_dir": str(folder)} | changes


def test_export_is_registered_but_not_part_of_the_default_run():
    pipelines = register_pipelines()
    assert [node.name for node in pipelines["export"].nodes] == ["export_model"]
    assert "export_model" not in {node.name for node in pipelines["__default__"].nodes}
    assert pipelines["export"].inputs() == {"params:export"}


def test_the_node_returns_each_checked_file_by_the_checkpoint_name(tmp_path):
    write_checkpoint(tmp_path / "mine.pt")
    files = export_checkpoint(_block(tmp_path, model=str(tmp_path / "mine.pt"), format="torchscript"))
    assert list(files) == ["mine.torchscript"] and files["mine.torchscript"][:2] == b"PK"  # a torch.jit zip


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format": "onx"}, "export.format: expected one of ['onnx', 'torchscript', 'both'], got 'onx'"),
        ({"tolerance": 0}, "export.tolerance: must be positive, got 0.0"),
        ({"formats": "onnx"}, "export.formats: unknown parameter; valid: "),
    ],
)
def test_a_bad_parameter_is_named_in_one_line(tmp_path, changes, message):
    with pytest.raises(ValueError) as error:
        export_parameters(_block(tmp_path, **changes))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"^export\.model: no checkpoint for architecture 'unet_frm' at "):
        export_checkpoint(_block(tmp_path))


def test_a_sampling_checkpoint_is_refused_in_one_line(tmp_path):
    write_checkpoint(tmp_path / "pixelcnn.pt", arch="pixelcnn", hparams={"hidden": 8, "n_blocks": 1})
    with pytest.raises(ValueError) as error:
        export_checkpoint(_block(tmp_path, model="pixelcnn"))
    assert str(error.value).startswith("export.model: pixelcnn inpaints by sampling the hole") and "\n" not in str(
        error.value
    )


def test_bytes_dataset_replaces_a_file_whole(tmp_path):
    dataset = BytesDataset(filepath=str(tmp_path / "m.onnx"))
    dataset.save(b"old")
    dataset.save(b"new bytes")
    assert dataset.load() == b"new bytes" and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny project whose data/06_models holds a unet_frm checkpoint (written as the train node saves one)."""
    root = make_project(tmp_path_factory.mktemp("export"))
    write_checkpoint(root / "data" / "06_models" / "unet_frm.pt")
    return root


@pytest.mark.slow
def test_kedro_run_export_writes_checked_onnx_and_torchscript_files(trained):
    result = kedro(
        trained, "run", "--env=tiny", "--pipeline=export", "--params=export.model=unet_frm,export.format=both"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    models = trained / "data" / "06_models"
    assert (models / "unet_frm.torchscript").is_file()
    session = onnxruntime.InferenceSession(str(models / "unet_frm.onnx"), providers=["CPUExecutionProvider"])
    image, mask = (
        np.random.default_rng(0).random((2, 3, 16, 16), dtype=np.float32),
        np.zeros((2, 1, 16, 16), np.float32),
    )
    mask[:, :, 4:8, 4:12] = 1
    (inpainted,) = session.run(None, {"image": image, "mask": mask})
    assert inpainted.shape == image.shape and np.array_equal(
        inpainted[mask.repeat(3, 1) == 0], image[mask.repeat(3, 1) == 0]
    )


@pytest.mark.slow
def test_a_bad_export_model_stops_in_one_line_and_writes_nothing(trained):
    before = checksums(trained / "data")
    result = kedro(trained, "run", "--env=tiny", "--pipeline=export", "--params=export.model=rowrnn")
    output = result.stderr + result.stdout
    assert result.returncode != 0 and "Traceback" not in output, output[-3000:]
    line = "export.model: no checkpoint for architecture 'rowrnn' at data/06_models/rowrnn.pt; "
    assert line in result.stderr.strip().splitlines()[-1]
    assert checksums(trained / "data") == before
