"""The shared training loop: best-epoch selection, random masks, resume after a kill."""

import numpy as np
import pytest
import torch

from pixelheal.config import parse
from pixelheal.models import make_model
from pixelheal.models.checkpoint import TRAIN_STATE_FORMAT
from pixelheal.training import TrainConfig, train
from pixelheal.training.data import EpochBatches
from tests.training.interrupt import Killed, die_at_step


def _data(n: int = 48, size: int = 16):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    masks = (rng.random((n, 1, size, size)) < 0.3).astype(np.uint8)
    return images, masks, np.arange(0, 32), np.arange(32, n)


def _model():
    torch.manual_seed(0)
    return make_model("unet_frm", widths=[4, 8])


CFG = TrainConfig(epochs=4, batch_size=8, lr=0.01, seed=3)


def test_history_and_best_epoch():
    images, masks, train_idx, val_idx = _data()
    result = train(_model(), images, masks, train_idx, val_idx, CFG)
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    assert {"train_loss", "val_loss", "val_psnr"} <= set(result.history[0])
    best = max(result.history, key=lambda r: r["val_psnr"])
    assert result.best_epoch == best["epoch"]
    assert result.best_metrics == best


def test_training_reduces_the_loss():
    images, masks, train_idx, val_idx = _data()
    images[:] = 128  # a learnable target: flat grey
    result = train(_model(), images, masks, train_idx, val_idx, TrainConfig(epochs=5, batch_size=8, lr=0.01))
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_training_is_reproducible():
    images, masks, train_idx, val_idx = _data()
    a = train(_model(), images, masks, train_idx, val_idx, CFG)
    b = train(_model(), images, masks, train_idx, val_idx, CFG)
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]


@pytest.mark.parametrize("kill_epoch", [2, 3])
def test_resume_continues_from_the_interrupted_epoch(tmp_path, kill_epoch):
    images, masks, train_idx, val_idx = _data()
    reference = train(_model(), images, masks, train_idx, val_idx, CFG)

    model, state = _model(), tmp_path / "state.pt"
    die_at_step(model, (kill_epoch - 1) * 4 + 2)  # 4 batches per epoch: dies in the middle of epoch k
    with pytest.raises(Killed):
        train(model, images, masks, train_idx, val_idx, CFG, state_path=state)
    assert torch.load(state, weights_only=True)["epochs_done"] == kill_epoch - 1

    resumed_epochs = []
    result = train(
        _model(),
        images,
        masks,
        train_idx,
        val_idx,
        CFG,
        state_path=state,
        resume=True,
        on_epoch=lambda record: resumed_epochs.append(record["epoch"]),
    )
    assert resumed_epochs == list(range(kill_epoch, CFG.epochs + 1))
    assert [r["train_loss"] for r in result.history] == [r["train_loss"] for r in reference.history]
    assert all(torch.equal(result.best_state[k], reference.best_state[k]) for k in reference.best_state)


def test_without_resume_an_existing_state_is_ignored(tmp_path):
    images, masks, train_idx, val_idx = _data()
    state = tmp_path / "state.pt"
    train(_model(), images, masks, train_idx, val_idx, CFG, state_path=state)
    epochs = []
    train(
        _model(), images, masks, train_idx, val_idx, CFG, state_path=state, on_epoch=lambda r: epochs.append(r["epoch"])
    )
    assert epochs == [1, 2, 3, 4]


def test_random_masks_are_fresh_per_epoch_and_reproducible():
    images, masks, train_idx, _ = _data()

    def generator(h, w, rng, image=None):
        return (rng.random((1, h, w)) < 0.5).astype(np.uint8)

    def first_batch(epoch):
        return EpochBatches(images, masks, train_idx, 8, seed=1, epoch=epoch, mask_generator=generator)[0][1]

    assert torch.equal(first_batch(0), first_batch(0))
    assert not torch.equal(first_batch(0), first_batch(1))
    assert not torch.equal(first_batch(0), torch.from_numpy(masks[:8]).float())


def test_flips_move_image_and_mask_together():
    images, masks, train_idx, _ = _data()
    batches = EpochBatches(images, masks, train_idx, 32, seed=0, epoch=0, shuffle=False, flip=True)
    x, m = batches[0]
    plain_x = torch.from_numpy(images[:32]).float() / 255
    flipped = [i for i in range(32) if not torch.equal(x[i], plain_x[i])]
    assert 0 < len(flipped) < 32
    for i in flipped:
        assert torch.equal(x[i], plain_x[i].flip(-1))
        assert torch.equal(m[i], torch.from_numpy(masks[i]).float().flip(-1))


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", 0), ("lr", 0.0)])
def test_invalid_config_is_named(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_unknown_selection_metric_is_named():
    images, masks, train_idx, val_idx = _data()
    with pytest.raises(ValueError, match="select_on"):
        train(_model(), images, masks, train_idx, val_idx, TrainConfig(epochs=1, select_on="val_accuracy"))


@pytest.mark.parametrize("kind", ["adam", "adamw", "sgd"])
def test_optimizer_is_chosen_in_parameters(kind):
    from pixelheal.training.optim import make_optimizer

    optimizer = make_optimizer(kind, _model().parameters(), lr=0.1, betas=(0.5, 0.999))
    assert type(optimizer).__name__.lower() == kind


def test_unknown_optimizer_is_named_before_training():
    with pytest.raises(ValueError, match=r"^unet_frm\.training\.optimizer: unknown kind 'lbfgs'; known: \['adam'"):
        parse(TrainConfig, {"optimizer": "lbfgs"}, "unet_frm.training")


@pytest.mark.parametrize(
    "block, problem",
    [
        ({"epoch": 2}, r"training\.epoch: unknown parameter; valid: \['epochs', 'batch_size'"),
        ({"epochs": "abc"}, r"training\.epochs: expected an integer, got 'abc'"),
        ({"epochs": 2.5}, r"training\.epochs: expected an integer, got 2\.5"),
        ({"betas": [0.9]}, r"training\.betas: expected a list of 2 values"),
        ({"lr_schedule": "linear"}, r"training\.lr_schedule: expected one of \['constant', 'cosine'\]"),
        ({"threads": 0}, r"training\.threads: must be at least 1 or null"),
    ],
)
def test_a_mistyped_training_parameter_is_named(block, problem):
    with pytest.raises(ValueError, match=problem):
        parse(TrainConfig, block, "gan.training")


def test_the_resume_state_is_marked_and_a_foreign_state_is_refused(tmp_path):
    images, masks, train_idx, val_idx = _data()
    state = tmp_path / "state.pt"
    train(_model(), images, masks, train_idx, val_idx, TrainConfig(epochs=1, batch_size=16), state_path=state)
    assert torch.load(state, weights_only=True)["format"] == TRAIN_STATE_FORMAT
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]  # written atomically: no temporary left
    torch.save({"epochs_done": 1}, state)  # e.g. written by another program
    with pytest.raises(ValueError, match=r"state\.pt is not a PixelHeal training state.*resume: false"):
        train(_model(), images, masks, train_idx, val_idx, TrainConfig(epochs=1), state_path=state, resume=True)


def test_time_budget_stops_before_an_epoch_that_would_overrun(monkeypatch):
    import pixelheal.training.loop as loop

    clock = {"t": 0.0}

    def fake_clock():  # every call advances 1 s: an epoch "takes" a few seconds
        clock["t"] += 1.0
        return clock["t"]

    monkeypatch.setattr(loop.time, "perf_counter", fake_clock)
    images, masks, train_idx, val_idx = _data()
    cfg = TrainConfig(epochs=50, batch_size=8, time_budget_s=10)
    result = train(_model(), images, masks, train_idx, val_idx, cfg)
    assert 1 <= len(result.history) < 50
    assert result.best_epoch in [r["epoch"] for r in result.history]


def test_cosine_schedule_decays_over_the_steps_or_the_budget():
    from pixelheal.training.loop import _Clock, _lr_factor

    cfg = TrainConfig(epochs=4, lr_schedule="cosine")
    assert [round(_lr_factor(cfg, p), 4) for p in (0, 0.25, 0.5, 0.75, 1)] == [1.0, 0.8536, 0.5, 0.1464, 0.0]
    # Half the budget spent at the start of epoch 2 of 100: half-way down, whatever the epoch count says.
    halfway = _Clock(epoch=1, epochs=100, elapsed=5.0, seconds_per_epoch=5.0, time_budget_s=10)
    assert _lr_factor(TrainConfig(epochs=100, lr_schedule="cosine"), halfway.progress(0.0)) == pytest.approx(0.5)
    assert halfway.progress(0.5) == pytest.approx(0.75)  # the epoch's pace carries the steps inside it
    assert _lr_factor(TrainConfig(epochs=4), 0.75) == 1.0


def test_warmup_rises_linearly_then_the_schedule_takes_over():
    from pixelheal.training.loop import _lr_factor

    cfg = TrainConfig(lr_schedule="cosine", warmup_fraction=0.2)
    assert [round(_lr_factor(cfg, p), 4) for p in (0, 0.1, 0.2, 0.6, 1)] == [0.0, 0.5, 1.0, 0.5, 0.0]
    assert _lr_factor(TrainConfig(warmup_fraction=0.5), 0.25) == 0.5  # constant after a warm-up


def test_cosine_schedule_sets_the_optimiser_learning_rate_every_step():
    images, masks, train_idx, val_idx = _data()
    model, seen = _model(), []
    original = model.training_step

    def recording_step(x, m, optimizers, scaler=None):
        seen.append(next(iter(optimizers.values())).param_groups[0]["lr"])
        return original(x, m, optimizers, scaler)

    model.training_step = recording_step
    train(model, images, masks, train_idx, val_idx, TrainConfig(epochs=2, batch_size=16, lr=0.01, lr_schedule="cosine"))
    assert seen == pytest.approx([0.01, 0.008536, 0.005, 0.001464], abs=1e-6)  # 2 epochs of 2 steps
