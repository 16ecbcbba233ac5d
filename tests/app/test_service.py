"""The web app's logic without a browser: checkpoint choices, the painted mask, inpainting with one and all."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pixelheal.app.__main__ import parse_args
from pixelheal.app.checkpoints import (
    list_checkpoints,
    local_checkpoints,
    mlflow_checkpoints,
    registered_checkpoints,
    resolve_choice,
)
from pixelheal.app.service import InpaintService, editor_image_and_mask
from pixelheal.data.transforms import prepare_image
from pixelheal.models.checkpoint import TRAIN_STATE_FORMAT, train_state_path
from tests.inference.helpers import box_mask, random_image, tiny_checkpoint, write_checkpoint


@pytest.fixture
def models_dir(tmp_path):
    """Two checkpoints and the resume state training keeps beside the first (not offered)."""
    root = tmp_path / "06_models"
    root.mkdir()
    write_checkpoint(root / "unet_frm.pt")
    write_checkpoint(root / "unet_frm_gray.pt", in_channels=1)
    torch.save({"format": TRAIN_STATE_FORMAT, "epochs_done": 1}, train_state_path(root / "unet_frm.pt"))
    return root


def painted_layer(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    """An RGBA layer, transparent but for one opaque magenta stroke over `box` (x0, y0, x1, y1)."""
    layer = np.zeros((size[1], size[0], 4), np.uint8)
    x0, y0, x1, y1 = box
    layer[y0:y1, x0:x1] = (255, 0, 255, 255)
    return Image.fromarray(layer, "RGBA")


def test_local_checkpoints_skip_resume_states(models_dir):
    assert [p.name for p in local_checkpoints(models_dir)] == ["unet_frm.pt", "unet_frm_gray.pt"]
    assert local_checkpoints(models_dir / "missing") == []
    assert [c.key for c in list_checkpoints(models_dir, None)] == [
        f"file:{models_dir / 'unet_frm.pt'}",
        f"file:{models_dir / 'unet_frm_gray.pt'}",
    ]


def test_a_missing_sqlite_store_is_not_created(tmp_path):
    assert mlflow_checkpoints(f"sqlite:///{tmp_path / 'mlflow.db'}") == []
    assert registered_checkpoints(f"sqlite:///{tmp_path / 'mlflow.db'}") == []
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow  # creating an MLflow SQLite store runs its migrations (a few seconds)
def test_registered_versions_and_mlflow_runs_with_a_checkpoint_are_offered_and_downloaded(tmp_path, models_dir):
    import mlflow

    from pixelheal.inference.mlflow_model import log_inpainting_model

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("pixelheal", artifact_location=str(tmp_path / "mlruns"))
    with_checkpoint = client.create_run(experiment, tags={"architecture": "unet_frm"}, run_name="unet_frm")
    client.log_artifact(with_checkpoint.info.run_id, str(models_dir / "unet_frm.pt"))
    client.log_artifact(with_checkpoint.info.run_id, str(train_state_path(models_dir / "unet_frm.pt")))
    client.create_run(experiment, tags={"architecture": "unet_aspp"})  # no checkpoint artifact: not offered
    client.create_run(experiment)  # the parent `kedro run`: no architecture tag, not offered
    (choice,) = mlflow_checkpoints(uri)
    assert choice.key == f"mlflow:{with_checkpoint.info.run_id}:unet_frm.pt" and "unet_frm" in choice.label
    path = resolve_choice(choice.key, uri, tmp_path / "cache")
    assert path.is_file() and path.read_bytes() == (models_dir / "unet_frm.pt").read_bytes()

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)  # the hooks log into the store kedro-mlflow set
    try:
        for _ in range(2):
            log_inpainting_model(models_dir / "unet_frm.pt", with_checkpoint.info.run_id, "pixelheal-unet_frm", {}, "")
        client.create_registered_model("someone-else")  # not a PixelHeal model: not offered
    finally:
        mlflow.set_tracking_uri(previous)
    registered = [f"models:/pixelheal-unet_frm/{v}" for v in (2, 1)]  # newest first
    assert [c.key for c in registered_checkpoints(uri)] == registered
    path = resolve_choice(registered[1], uri, tmp_path / "cache")
    assert path.is_file() and path.read_bytes() == (models_dir / "unet_frm.pt").read_bytes()
    assert resolve_choice(registered[1], uri, tmp_path / "cache") == path  # downloaded once
    local = [f"file:{models_dir / name}" for name in ("unet_frm.pt", "unet_frm_gray.pt")]
    assert [c.key for c in list_checkpoints(models_dir, uri)] == [*local, *registered, choice.key]


def test_painted_strokes_and_an_uploaded_mask_are_united():
    image = random_image(np.random.default_rng(0), 20, 30)
    upload = Image.fromarray(box_mask(20, 30) * 255)
    editor = {"background": image.convert("RGBA"), "layers": [painted_layer((30, 20), (0, 0, 4, 3))]}
    background, mask = editor_image_and_mask(editor, upload)
    expected = box_mask(20, 30)
    expected[0:3, 0:4] = 1
    assert background.mode == "RGB" and np.array_equal(np.asarray(background), np.asarray(image))
    assert np.array_equal(mask, expected)


def test_a_transparent_background_is_read_as_training_ingestion_reads_it():
    rgba = np.asarray(random_image(np.random.default_rng(2), 6, 8, channels=3).convert("RGBA")).copy()
    rgba[:3, :, 3] = 0  # the top half is transparent
    editor = {"background": Image.fromarray(rgba, "RGBA"), "layers": [painted_layer((8, 6), (1, 1, 3, 3))]}
    image, _ = editor_image_and_mask(editor, None)
    expected = prepare_image(Image.fromarray(rgba, "RGBA"), (6, 8))  # (3, H, W)
    assert np.array_equal(np.asarray(image).transpose(2, 0, 1), expected)
    assert (np.asarray(image)[:3] == 255).all()  # composited onto white


@pytest.mark.parametrize(
    "editor, upload, problem",
    [
        (None, None, "upload an image first"),
        ({"background": Image.new("RGB", (8, 8)), "layers": []}, None, "paint the hole"),
        (
            {"background": Image.new("RGB", (8, 8)), "layers": []},
            Image.new("L", (9, 8), 255),
            "9x8 but the image is 8x8",
        ),
    ],
)
def test_editor_problems_are_named(editor, upload, problem):
    with pytest.raises(ValueError, match=problem):
        editor_image_and_mask(editor, upload)


def test_run_inpaints_with_the_choice_and_compares_every_local_checkpoint(tmp_path, models_dir):
    unversioned = {k: v for k, v in tiny_checkpoint().to_dict().items() if k not in ("format", "version")}
    torch.save(unversioned, models_dir / "old.pt")  # from before format versioning: skipped with a note
    service = InpaintService(models_dir, None, tmp_path / "cache")
    image = random_image(np.random.default_rng(1), 20, 30)
    editor = {"background": image.convert("RGBA"), "layers": [painted_layer((30, 20), (5, 5, 15, 12))]}
    out = service.run(f"file:{models_dir / 'unet_frm.pt'}", editor, None, n_samples=3, seed=0)
    mask = np.asarray(out["mask"]) // 255
    assert mask.sum() == 70 and out["result"].size == (30, 20)
    assert np.array_equal(np.asarray(out["result"])[mask == 0], np.asarray(image)[mask == 0])
    assert out["samples"] == []  # a deterministic architecture gives one completion
    assert [caption for _, caption in out["comparison"]] == ["unet_frm", "unet_frm (unet_frm_gray)"]
    assert out["comparison"][1][0].mode == "L"
    assert "old.pt" in out["notes"] and "retrain" in out["notes"]


def test_run_without_a_checkpoint_says_how_to_get_one(tmp_path):
    service = InpaintService(tmp_path, None, tmp_path / "cache")
    editor = {"background": Image.new("RGB", (8, 8)), "layers": [painted_layer((8, 8), (1, 1, 3, 3))]}
    with pytest.raises(ValueError, match="kedro run"):
        service.run(None, editor, None, 1, 0)


def test_command_line_defaults_suit_the_project_root(monkeypatch):
    monkeypatch.delenv("PIXELHEAL_MLFLOW_URI", raising=False)
    args = parse_args([])
    assert (args.models_dir, args.mlflow_uri, args.host, args.port) == (
        "data/06_models",
        "sqlite:///mlflow.db",
        "127.0.0.1",
        7860,
    )
