"""Faults of the training loop: divergence, a worse-than-untrained best epoch, resume states that do not fit."""

from __future__ import annotations

import hashlib
import logging
import math

import numpy as np
import pytest
import torch

from pixelheal.models import make_model
from pixelheal.training import TrainConfig, train
from pixelheal.training.guards import improves

WHERE = "unet_frm.training"
CFG = TrainConfig(epochs=4, batch_size=8, lr=0.01, seed=3, device="cpu")


def _data(n: int = 48, size: int = 16):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    masks = (rng.random((n, 1, size, size)) < 0.3).astype(np.uint8)
    return images, masks, np.arange(0, 32), np.arange(32, n)


def _model(widths=(4, 8)):
    torch.manual_seed(0)
    return make_model("unet_frm", widths=list(widths))


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _nan_at_steps(model, steps):
    """Make the training steps numbered in `steps` (1-based) report a NaN loss, as a diverged step would."""
    calls = {"n": 0}
    original = model.training_step

    def step(*args, **kwargs):
        calls["n"] += 1
        terms = original(*args, **kwargs)
        return terms | {"loss": math.nan} if calls["n"] in steps else terms

    model.training_step = step


def _train(model, cfg=CFG, **kwargs):
    images, masks, train_idx, val_idx = _data()
    return train(model, images, masks, train_idx, val_idx, cfg, where=WHERE, **kwargs)


def test_a_huge_learning_rate_stops_the_run_naming_the_architecture_and_epoch(tmp_path):
    images, masks, train_idx, val_idx = _data()
    state = tmp_path / "pixelcnn.state.pt"

    def run(**settings):
        torch.manual_seed(0)
        model = make_model("pixelcnn", hidden=8, n_blocks=1, cond_layers=1)
        cfg = TrainConfig(batch_size=16, select_on="val_nll_bpd", device="cpu", **settings)
        return train(model, images, masks, train_idx, val_idx, cfg, state_path=state, where="pixelcnn.training")

    run(epochs=1)
    before = _sha(state)
    with pytest.raises(ValueError) as error:
        run(epochs=2, lr=1e30, optimizer="sgd")
    message = str(error.value)
    assert message.startswith("pixelcnn.training: training diverged in epoch 1 of 2 (train_loss is nan)")
    assert "lower pixelcnn.training.lr" in message and "\n" not in message
    assert _sha(state) == before  # a diverged epoch never reaches the resume state


def test_a_nan_loss_in_a_later_epoch_stops_there_and_the_state_keeps_the_last_finite_epoch(tmp_path):
    state = tmp_path / "state.pt"
    model = _model()
    _nan_at_steps(model, {10})  # 4 batches per epoch: the 2nd batch of epoch 3
    with pytest.raises(
        ValueError, match=r"^unet_frm\.training: training diverged in epoch 3 of 4 \(train_loss is nan\)"
    ):
        _train(model, state_path=state)
    saved = torch.load(state, weights_only=True)
    assert saved["epochs_done"] == 2
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())


def test_non_finite_weights_are_caught_even_when_the_loss_still_looks_finite():
    model = _model()
    original, calls = model.training_step, {"n": 0}

    def poisoning_step(*args, **kwargs):
        terms = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 4:  # the last step of epoch 1: its loss was computed before the weights broke
            with torch.no_grad():
                next(model.parameters()).fill_(math.inf)
        return terms

    model.training_step = poisoning_step
    with pytest.raises(ValueError, match=r"epoch 1 of 4 \(weight \S+ is not finite\)"):
        _train(model)


def test_skip_epoch_restores_the_last_good_weights_and_goes_on(caplog):
    reference = _train(_model(), TrainConfig(epochs=1, batch_size=8, lr=0.01, seed=3, device="cpu"))
    model = _model()
    _nan_at_steps(model, {6})  # epoch 2
    skip = TrainConfig(epochs=3, batch_size=8, lr=0.01, seed=3, device="cpu", on_nonfinite="skip_epoch")
    with caplog.at_level(logging.WARNING, logger="pixelheal.training"):
        result = _train(model, skip)
    assert [r["epoch"] for r in result.history] == [1, 3]
    assert [r.getMessage() for r in caplog.records if "diverged" in r.getMessage()] == [
        "unet_frm.training: epoch 2 of 3 diverged (train_loss is nan); skipped it and went on from the weights of epoch 1"
    ]
    assert result.history[0]["train_loss"] == reference.history[0]["train_loss"]
    assert all(math.isfinite(v) for record in result.history for v in record.values())
    assert result.best_epoch in (1, 3)


def test_when_every_epoch_diverges_there_is_no_best_epoch_to_save():
    model = _model()
    _nan_at_steps(model, set(range(1, 100)))
    skip = TrainConfig(epochs=2, batch_size=8, device="cpu", on_nonfinite="skip_epoch")
    with pytest.raises(ValueError, match=r"^unet_frm\.training: no epoch finished with finite losses"):
        _train(model, skip)


def test_a_nan_validation_score_is_never_the_best_epoch():
    model = _model()
    original = model.validation_step
    calls = {"n": 0}

    def step(x, m):
        calls["n"] += 1
        terms = original(x, m)
        return terms | {"psnr": math.nan} if calls["n"] > 4 else terms  # 2 batches each: untrained, then epoch 1

    model.validation_step = step
    skip = TrainConfig(epochs=3, batch_size=8, device="cpu", on_nonfinite="skip_epoch")
    result = _train(model, skip)
    assert result.best_epoch == 1 and [r["epoch"] for r in result.history] == [1]
    assert improves("val_psnr", 12.0, math.nan)  # a NaN best from an older resume state is no best


def test_the_untrained_score_is_measured_and_a_worse_best_epoch_is_one_warning(caplog):
    images, masks, train_idx, val_idx = _data()
    y, x = np.mgrid[0:16, 0:16] / 16
    waves = [0.5 + 0.4 * np.sin(3 * x + i) * np.cos(2 * y + c) for i in range(len(images)) for c in range(3)]
    images[:] = (255 * np.stack(waves).reshape(images.shape)).astype(np.uint8)  # smooth: the fill is close already
    torch.manual_seed(0)
    model = make_model("unet_frm", widths=[4, 8], hole_fill="biharmonic")
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e6, device="cpu")
    with caplog.at_level(logging.WARNING, logger="pixelheal.training"):
        result = train(model, images, masks, train_idx, val_idx, cfg, where=WHERE)
    assert result.untrained["val_psnr"] > result.best_metrics["val_psnr"]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    best, untrained = result.best_metrics["val_psnr"], result.untrained["val_psnr"]
    assert warning.startswith(f"unet_frm.training: the best epoch (1) has val_psnr={best:.4g}, worse than the")
    assert f"untrained model's {untrained:.4g}" in warning


def test_a_better_best_epoch_gives_no_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="pixelheal.training"):
        result = _train(_model())
    assert set(result.untrained) == {"val_loss", "val_psnr"}
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_resume_without_a_state_file_says_there_is_nothing_to_resume(tmp_path):
    state = tmp_path / "unet_frm.state.pt"
    with pytest.raises(ValueError) as error:
        _train(_model(), state_path=state, resume=True)
    assert str(error.value) == (
        f"unet_frm.training.resume: true, but there is nothing to resume: no training state at {state}; "
        "set resume: false to train from the start"
    )
    assert not state.exists()


def _state(tmp_path, widths=(4, 8), arch="unet_frm"):
    state = tmp_path / "unet_frm.state.pt"
    extra = {"arch": arch, "hparams": {"widths": list(widths)}}
    _train(_model(widths), TrainConfig(epochs=1, batch_size=16, device="cpu"), state_path=state, state_extra=extra)
    return state


@pytest.mark.parametrize(
    "spoil, problem",
    [
        (
            lambda state: state,  # written with widths [4, 8]; this run has [4, 16]
            "this training state was written for another hparams: widths is [4, 8] there, [4, 16] in this run",
        ),
        (
            lambda state: torch.save(torch.load(state, weights_only=True) | {"arch": "pixelcnn"}, state),
            "this training state was written for another arch: 'pixelcnn' there, 'unet_frm' in this run",
        ),
        (
            lambda state: state.write_bytes(state.read_bytes()[: len(state.read_bytes()) // 2]),
            "is not a readable PixelHeal training state (truncated or not plain torch data",
        ),
        (
            lambda state: torch.save(
                {k: v for k, v in torch.load(state, weights_only=True).items() if k != "optimizers"}, state
            ),
            "is an incomplete PixelHeal training state: it lacks ['optimizers']",
        ),
    ],
)
def test_a_state_that_does_not_fit_is_one_line_naming_it_and_stays_untouched(tmp_path, spoil, problem):
    state = _state(tmp_path)
    spoil(state)
    before = _sha(state)
    expected_widths = (4, 16) if "hparams" in problem else (4, 8)
    extra = {"arch": "unet_frm", "hparams": {"widths": list(expected_widths)}}
    with pytest.raises(ValueError) as error:
        _train(_model(expected_widths), state_path=state, resume=True, state_extra=extra)
    message = str(error.value)
    assert str(state) in message and problem in message and "\n" not in message
    assert message.endswith("delete it or set resume: false")
    assert _sha(state) == before


def test_weights_that_do_not_fit_name_the_state_and_the_first_tensor(tmp_path):
    state = _state(tmp_path)  # no identifying entries are compared: only the weights can tell
    with pytest.raises(ValueError) as error:
        _train(_model((4, 16)), state_path=state, resume=True)
    message = str(error.value)
    assert message.startswith(f"{state}: the weights do not match the hyper-parameters: ")
    assert "has shape" in message and message.endswith("delete it or set resume: false")


def test_an_unavailable_device_is_named_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    state = tmp_path / "state.pt"
    with pytest.raises(ValueError, match=r"^unet_frm\.training\.device: device 'cuda' is not available: no CUDA GPU"):
        _train(_model(), TrainConfig(epochs=1, device="cuda"), state_path=state)
    assert not state.exists()


@pytest.mark.parametrize(
    "block, problem",
    [
        ({"time_budget_s": -5}, "unet_frm.training.time_budget_s: must be positive or null, got -5.0"),
        ({"on_nonfinite": "ignore"}, "unet_frm.training.on_nonfinite: expected one of ['stop', 'skip_epoch']"),
    ],
)
def test_an_impossible_training_setting_is_refused_naming_it(block, problem):
    from pixelheal.config import parse

    with pytest.raises(ValueError) as error:
        parse(TrainConfig, block, WHERE)
    assert str(error.value).startswith(problem)
