"""The training loop's speed options (precision, memory format, compilation) and its weight average."""

import logging
from dataclasses import replace

import numpy as np
import pytest
import torch

from pixelheal.config import parse
from pixelheal.models import make_model
from pixelheal.models.base import optimise
from pixelheal.training import TrainConfig, throughput, train
from pixelheal.training.ema import WeightAverage
from tests.training.interrupt import Killed, die_at_step

CPU = torch.device("cpu")
needs_bf16 = pytest.mark.skipif(not throughput.native_bf16(CPU), reason="this CPU has no native bfloat16")


def _data(n: int = 48, size: int = 16):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    masks = (rng.random((n, 1, size, size)) < 0.3).astype(np.uint8)
    return images, masks, np.arange(0, 32), np.arange(32, n)


def _model(kind: str = "unet_frm"):
    torch.manual_seed(0)
    return make_model(kind, widths=[4, 8]) if kind.startswith("unet") else make_model(kind)


def _batch():
    images, masks, _, _ = _data()
    return torch.from_numpy(images[:8]).float() / 255, torch.from_numpy(masks[:8]).float()


CFG = TrainConfig(epochs=3, batch_size=8, lr=0.01, seed=3)


# ----- precision -------------------------------------------------------------------------------


@needs_bf16
@pytest.mark.parametrize("kind", ["unet_frm", "rowrnn"])
def test_a_bf16_step_has_the_fp32_loss_within_one_percent(kind):
    x, m = _batch()
    x = torch.rand_like(x)  # a loss well away from zero, so a relative tolerance means something
    losses = {}
    for precision in ("fp32", "bf16"):
        model = _model(kind).train()
        torch.manual_seed(1)
        for parameter in model.parameters():  # the zero head would hide the convolutions from the loss
            torch.nn.init.normal_(parameter, std=0.2)
        dtype = throughput.autocast_dtype(precision, CPU, f"{kind}.training.precision")
        with throughput.autocast(CPU, dtype):
            losses[precision] = model.losses(x, m)["loss"].item()
    # bf16 keeps 8 bits of mantissa: the matmuls' rounding moves the loss by well under 1 % (the GRU states stay fp32).
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.01)
    assert losses["bf16"] != losses["fp32"]  # autocast did lower the precision


@needs_bf16
@pytest.mark.parametrize("kind", ["unet_frm", "gan", "pixelcnn", "rowrnn"])
def test_bf16_training_learns_and_keeps_float32_weights(kind):
    images, masks, train_idx, val_idx = _data()
    select_on = "val_nll_bpd" if kind in ("pixelcnn", "rowrnn") else "val_psnr"
    cfg = TrainConfig(epochs=2, batch_size=8, lr=0.002, precision="bf16", channels_last=True, select_on=select_on)
    model = _model(kind)
    result = train(model, images, masks, train_idx, val_idx, cfg)
    assert all(np.isfinite(r["train_loss"]) for r in result.history)
    assert {v.dtype for v in result.best_state.values() if v.is_floating_point()} == {torch.float32}
    assert all(v.is_contiguous() for v in result.best_state.values())  # checkpoints never keep the NHWC strides
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_precision_auto_is_bf16_exactly_where_it_is_native(monkeypatch):
    monkeypatch.setattr(throughput, "native_bf16", lambda device: False)
    assert throughput.autocast_dtype("auto", CPU, "x.precision") is None
    with pytest.raises(ValueError, match=r"^x\.precision: bf16 is not native on this cpu device"):
        throughput.autocast_dtype("bf16", CPU, "x.precision")
    monkeypatch.setattr(throughput, "native_bf16", lambda device: True)
    assert throughput.autocast_dtype("auto", CPU, "x.precision") == torch.bfloat16
    assert throughput.autocast_dtype("fp32", CPU, "x.precision") is None


def test_fp16_is_refused_off_cuda_naming_the_parameter():
    with pytest.raises(ValueError, match=r"^unet_frm\.training\.precision: fp16 autocast is for CUDA GPUs, not cpu"):
        throughput.autocast_dtype("fp16", CPU, "unet_frm.training.precision")


def test_a_grad_scaler_step_moves_the_weights_as_a_plain_step():
    x, m = _batch()
    moved = []
    for scaler in (None, torch.amp.GradScaler("cpu", init_scale=1024.0)):
        model = _model().train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        model.training_step(x, m, {"model": optimizer}, scaler)
        moved.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(moved[0], moved[1], atol=1e-6)  # the scale is divided out before the step


def test_a_grad_scaler_skips_a_step_whose_gradients_overflow():
    model = _model().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    scaler = torch.amp.GradScaler("cpu")
    loss = sum(p.sum() for p in model.parameters()) * torch.tensor(float("inf"))
    optimise(loss, optimizer, scaler)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))


# ----- memory format and compilation -----------------------------------------------------------


def test_channels_last_trains_to_the_same_weights():
    images, masks, train_idx, val_idx = _data()
    plain = train(_model(), images, masks, train_idx, val_idx, CFG)
    nhwc = train(_model(), images, masks, train_idx, val_idx, replace(CFG, channels_last=True))
    # Only the convolution algorithms differ: the same training to float rounding.
    for name, value in plain.best_state.items():
        assert torch.allclose(value, nhwc.best_state[name], atol=1e-4), name


def test_compile_falls_back_to_eager_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(throughput, "compile_unavailable", lambda device: "RuntimeError: no C++ compiler")
    images, masks, train_idx, val_idx = _data()
    cfg = TrainConfig(epochs=1, batch_size=8, compile=True)
    with caplog.at_level(logging.WARNING, logger="pixelheal.training.throughput"):
        result = train(_model(), images, masks, train_idx, val_idx, cfg, where="unet_frm.training")
    assert [r.getMessage() for r in caplog.records if r.name == "pixelheal.training.throughput"] == [
        "unet_frm.training.compile: training uncompiled: RuntimeError: no C++ compiler"
    ]
    assert len(result.history) == 1


def test_compile_unavailable_reports_why_the_probe_failed(monkeypatch):
    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("Compiler: cc is not found\nmore detail")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    assert throughput.compile_unavailable(CPU) == "RuntimeError: Compiler: cc is not found"


def test_compile_keeps_the_state_dict_keys(monkeypatch):
    monkeypatch.setattr(throughput, "compile_unavailable", lambda device: None)
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kwargs: compiled.append(type(self).__name__))
    model = _model("gan")
    keys = list(model.state_dict())
    assert throughput.compile_networks(model, CPU, "gan.training")
    assert len(compiled) == len(model.networks()) == 2  # the generator and the discriminator
    assert list(model.state_dict()) == keys


# ----- weight average --------------------------------------------------------------------------


def test_the_average_follows_its_formula_and_swaps_in_and_out():
    model = torch.nn.Linear(2, 1)
    average = WeightAverage(model, decay=0.9)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update()  # first update: decay min(0.9, 2/11)
    expected = start + (1 - 2 / 11) * 1.0
    assert torch.allclose(average.average["weight"], expected)
    raw = model.weight.detach().clone()
    with average.swapped_in():
        assert torch.allclose(model.weight, expected)
    assert torch.equal(model.weight, raw)


def test_the_checkpoint_holds_the_average_and_the_resume_state_both(tmp_path):
    images, masks, train_idx, val_idx = _data()
    cfg = replace(CFG, ema_decay=0.9)
    state = tmp_path / "state.pt"
    model = _model()
    result = train(model, images, masks, train_idx, val_idx, cfg, state_path=state)
    saved = torch.load(state, weights_only=True)
    assert saved["average"]["updates"] == cfg.epochs * 4
    raw = saved["model"]
    assert all(torch.equal(raw[k], v) for k, v in model.state_dict().items())  # the raw weights, for resume
    best_is_last = result.best_epoch == cfg.epochs
    if best_is_last:
        assert all(torch.equal(result.best_state[k], saved["average"]["average"][k]) for k in raw)
    assert any(not torch.equal(result.best_state[k], raw[k]) for k in raw)  # not the raw weights


def test_validation_scores_the_average():
    images, masks, train_idx, val_idx = _data()
    with_average = train(_model(), images, masks, train_idx, val_idx, replace(CFG, ema_decay=0.99))
    without = train(_model(), images, masks, train_idx, val_idx, CFG)
    # Same raw training (the average never feeds back), different validated weights.
    assert [r["train_loss"] for r in with_average.history] == [r["train_loss"] for r in without.history]
    assert [r["val_psnr"] for r in with_average.history] != [r["val_psnr"] for r in without.history]


def test_resume_with_an_average_equals_the_uninterrupted_run(tmp_path):
    images, masks, train_idx, val_idx = _data()
    cfg = replace(CFG, ema_decay=0.9)
    reference = train(_model(), images, masks, train_idx, val_idx, cfg)
    model, state = _model(), tmp_path / "state.pt"
    die_at_step(model, 4 + 2)  # in the middle of epoch 2
    with pytest.raises(Killed):
        train(model, images, masks, train_idx, val_idx, cfg, state_path=state)
    result = train(_model(), images, masks, train_idx, val_idx, cfg, state_path=state, resume=True)
    assert [r["val_psnr"] for r in result.history] == [r["val_psnr"] for r in reference.history]
    assert all(torch.equal(result.best_state[k], reference.best_state[k]) for k in reference.best_state)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ema_decay", 1.0, r"ema_decay: must be in \(0, 1\) or null, got 1.0"),
        ("warmup_fraction", 1.0, r"warmup_fraction: must be in \[0, 1\), got 1.0"),
        ("precision", "fp8", r"precision: expected one of \['auto', 'fp32', 'bf16', 'fp16'\], got 'fp8'"),
    ],
)
def test_bad_recipe_values_are_refused_naming_the_key(key, value, message):
    with pytest.raises(ValueError, match=rf"unet_frm\.training\.{message}"):
        parse(TrainConfig, {key: value}, "unet_frm.training")
