"""The train_<arch> nodes: nothing saved after a divergence, untrained metrics recorded, foreign checkpoints refused."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from pixelheal.models import save_checkpoint
from pixelheal.models.checkpoint import read_checkpoint
from pixelheal.pipelines.train.nodes import evaluate_model, train_model

PIXELCNN = {"kind": "pixelcnn", "hidden": 8, "n_blocks": 1, "cond_layers": 1}
UNET = {"kind": "unet_frm", "widths": [4, 8]}
TRAINING = {"epochs": 1, "batch_size": 16, "device": "cpu"}
LIKELIHOOD = TRAINING | {"select_on": "val_nll_bpd"}  # what the sampling architectures select on
EVALUATION = {
    "batch_size": 16,
    "device": "cpu",
    "grid_images": 2,
    "samples_per_image": 1,
    "seed": 0,
    "point_samples": 2,
}
EVALUATION |= {"lpips": "none", "lpips_net": "alex", "fid": "none"}
SPLITS = {"train": list(range(32)), "val": list(range(32, 40)), "test": list(range(40, 48))}


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 3, 16, 16), dtype=np.uint8)
    return images, (rng.random((48, 1, 16, 16)) < 0.3).astype(np.uint8)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_diverged_run_raises_one_line_and_leaves_the_resume_state_alone(data, tmp_path):
    state = tmp_path / "pixelcnn.state.pt"
    train_model(*data, SPLITS, PIXELCNN, LIKELIHOOD, state)
    before = _sha(state)
    diverging = LIKELIHOOD | {"epochs": 2, "lr": 1e30, "optimizer": "sgd"}
    with pytest.raises(
        ValueError, match=r"^pixelcnn\.training: training diverged in epoch 1 of 2 \(train_loss is nan\)"
    ):
        train_model(*data, SPLITS, PIXELCNN, diverging, state)
    assert _sha(state) == before


def test_the_checkpoint_records_the_untrained_validation_metrics(data, tmp_path):
    checkpoint, _ = train_model(*data, SPLITS, UNET, TRAINING, tmp_path / "unet_frm.state.pt")
    assert {"val_psnr_untrained", "val_loss_untrained"} <= set(checkpoint.metrics)
    assert checkpoint.metrics["val_psnr"] == checkpoint.history[0]["val_psnr"]


@pytest.mark.parametrize("empty", ["val", "test"])
def test_split_indices_without_val_or_test_images_are_refused_before_training(data, tmp_path, empty):
    state = tmp_path / "unet_frm.state.pt"
    with pytest.raises(ValueError, match=rf"^split_indices has no {empty} images; give split\.fractions\.{empty} a"):
        train_model(*data, SPLITS | {empty: []}, UNET, TRAINING, state)
    assert not state.exists()


def test_resume_without_a_state_names_the_file_it_expected(data, tmp_path):
    state = tmp_path / "unet_frm.state.pt"
    with pytest.raises(
        ValueError, match=rf"^unet_frm\.training\.resume: true, but there is nothing to resume: .*{state}"
    ):
        train_model(*data, SPLITS, UNET, TRAINING | {"resume": True}, state)
    assert not state.exists()


def test_resuming_the_state_of_another_architecture_is_refused(data, tmp_path):
    state = tmp_path / "unet_frm.state.pt"
    train_model(*data, SPLITS, PIXELCNN, LIKELIHOOD, state)  # then renamed by hand
    before = _sha(state)
    with pytest.raises(ValueError, match=r"written for another arch: 'pixelcnn' there, 'unet_frm' in this run"):
        train_model(*data, SPLITS, UNET, TRAINING | {"resume": True}, state)
    assert _sha(state) == before


def test_evaluate_refuses_a_checkpoint_of_another_architecture(data, tmp_path):
    path = tmp_path / "unet_frm.pt"  # a pixelcnn checkpoint renamed by hand
    save_checkpoint(train_model(*data, SPLITS, PIXELCNN, LIKELIHOOD, tmp_path / "x.state.pt")[0], path)
    before = _sha(path)
    with pytest.raises(ValueError) as error:
        evaluate_model(read_checkpoint(path), *data, SPLITS, EVALUATION, UNET)
    assert str(error.value).startswith(f"{path} holds a 'pixelcnn' model, not the 'unet_frm' of unet_frm.model.kind")
    assert _sha(path) == before


def test_evaluate_names_an_unavailable_device(data, tmp_path, monkeypatch):
    checkpoint, _ = train_model(*data, SPLITS, UNET, TRAINING, tmp_path / "unet_frm.state.pt")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^evaluation\.device: device 'cuda' is not available"):
        evaluate_model(checkpoint, *data, SPLITS, EVALUATION | {"device": "cuda"}, UNET)


def test_evaluate_scores_a_matching_checkpoint_without_nan(data, tmp_path):
    checkpoint, _ = train_model(*data, SPLITS, PIXELCNN, LIKELIHOOD, tmp_path / "p.state.pt")
    results, _, _ = evaluate_model(checkpoint, *data, SPLITS, EVALUATION, PIXELCNN)
    assert results["method"] == "pixelcnn"
    assert all(v is None or np.isfinite(v) for v in results["metrics"].values())


def test_metrics_without_any_finite_value_are_none_not_nan(data, tmp_path):
    images, masks = data
    masks[SPLITS["test"]] = 0  # no test image has a hole: hole metrics and the hole likelihood are undefined
    checkpoint, _ = train_model(images, masks, SPLITS, PIXELCNN, LIKELIHOOD, tmp_path / "p.state.pt")
    results, _, _ = evaluate_model(checkpoint, images, masks, SPLITS, EVALUATION, PIXELCNN)
    metrics = results["metrics"]
    assert metrics["test_nll_bpd"] is None and metrics["test_psnr_hole"] is None
    assert all(v is None or np.isfinite(v) for v in metrics.values())


def test_picture_epochs_keep_one_progress_grid_per_listed_epoch(tmp_path, data):
    _, pictures = train_model(*data, SPLITS, UNET, TRAINING | {"epochs": 2, "picture_epochs": [2]}, tmp_path / "s.pt")
    assert list(pictures) == ["epoch_002"]
    assert pictures["epoch_002"].size[0] > 0
    _, none = train_model(*data, SPLITS, UNET, TRAINING | {"epochs": 1}, tmp_path / "t.pt")
    assert none == {}
