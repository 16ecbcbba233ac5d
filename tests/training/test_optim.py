"""The Muon optimiser: orthogonalised steps for the weight matrices, AdamW for the rest, one schedule for both."""

import copy

import numpy as np
import pytest
import torch

from pixelheal.config import parse
from pixelheal.models import make_model
from pixelheal.training import TrainConfig, train
from pixelheal.training.loop import _set_lr
from pixelheal.training.optim import MUON_MOMENTUM, Muon, make_optimizer, orthogonalise, takes_muon


def _unet():
    torch.manual_seed(0)
    return make_model("unet_frm", widths=[16, 32], hole_fill="biharmonic")


@pytest.mark.parametrize("shape", [(32, 288), (288, 32), (64, 64), (16, 20)])
def test_orthogonalise_leaves_every_singular_value_near_one(shape):
    torch.manual_seed(0)
    u, _, vt = torch.linalg.svd(torch.randn(shape), full_matrices=False)
    matrix = u @ torch.diag(torch.linspace(0.05, 3.0, min(shape))) @ vt  # singular values 0.05 to 3
    singular = torch.linalg.svdvals(orthogonalise(matrix).float())
    assert singular.min() > 0.6 and singular.max() < 1.25
    # The singular directions are kept: in the input's bases the result is diagonal.
    in_bases = u.T @ orthogonalise(matrix).float() @ vt.T
    off_diagonal = in_bases - torch.diag(torch.diagonal(in_bases))
    assert off_diagonal.norm() < 0.05 * in_bases.norm()


@pytest.mark.parametrize("shape", [(3, 32, 144), (3, 144, 32)])
def test_orthogonalise_treats_each_matrix_of_a_stack_on_its_own(shape):
    stack = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(orthogonalise(stack), torch.stack([orthogonalise(m) for m in stack]), atol=1e-6)


def test_same_shape_matrices_each_step_by_their_own_momentum():
    """Muon orthogonalises same-shape matrices as one batch: each must still follow its own formula."""
    torch.manual_seed(0)
    convs = [torch.nn.Conv2d(16, 32, 3, bias=False) for _ in range(3)] + [torch.nn.Conv2d(32, 16, 1, bias=False)]
    optimizer = Muon([c.weight for c in convs], lr=0.01, muon_lr=0.05)
    before = [c.weight.detach().clone() for c in convs]
    for conv in convs:
        conv.weight.grad = torch.randn_like(conv.weight)
    grads = [c.weight.grad.clone() for c in convs]
    optimizer.step()
    for conv, start, grad in zip(convs, before, grads):
        step = orthogonalise((grad * (1 + MUON_MOMENTUM)).flatten(1)).view_as(grad)
        rows, columns = grad.flatten(1).shape
        assert torch.allclose(conv.weight, start - 0.05 * max(1, rows / columns) ** 0.5 * step, atol=1e-6)


def test_matrices_take_muon_and_the_rest_adamw():
    model = _unet()
    optimizer = make_optimizer("muon", model.parameters(), lr=0.002, muon_lr=0.03)
    muon, adamw = optimizer.param_groups
    assert muon["muon"] and not adamw["muon"]
    assert {id(p) for p in muon["params"]} == {id(p) for p in model.parameters() if p.ndim == 4 and takes_muon(p)}
    head = model.unet.head.weight  # (3, 16, 1, 1): three rows, the image's channels
    assert any(p is head for p in adamw["params"]) and all(p.ndim == 1 for p in adamw["params"] if p is not head)
    assert muon["lr"] == 0.03 and muon["lr_scale"] == pytest.approx(15.0) and adamw["lr"] == 0.002


def test_a_muon_step_follows_its_formula_and_the_rest_steps_as_adamw():
    torch.manual_seed(0)
    conv, head = torch.nn.Conv2d(16, 32, 3), torch.nn.Conv2d(32, 3, 1)
    reference_head = torch.nn.Conv2d(32, 3, 1)
    reference_head.load_state_dict(head.state_dict())
    optimizer = Muon([*conv.parameters(), *head.parameters()], lr=0.01, muon_lr=0.05, weight_decay=0.1)
    reference = torch.optim.AdamW(reference_head.parameters(), lr=0.01, weight_decay=0.1)
    before = conv.weight.detach().clone()
    for module in (conv, head, reference_head):
        for p in module.parameters():
            p.grad = torch.ones_like(p) if module is not conv or p.ndim == 1 else torch.randn_like(p)
    grad = conv.weight.grad.clone()
    optimizer.step()
    reference.step()
    # First step: the momentum is the gradient, and Nesterov adds it once more.
    step = orthogonalise((grad * (1 + MUON_MOMENTUM)).flatten(1)).view_as(grad)
    expected = before * (1 - 0.05 * 0.1) - 0.05 * step  # 32 rows x 144 columns: no tall-matrix scale
    assert torch.allclose(conv.weight, expected, atol=1e-6)
    assert all(torch.allclose(a, b) for a, b in zip(head.parameters(), reference_head.parameters()))


def test_the_schedule_scales_each_group_by_its_own_rate():
    optimizer = make_optimizer("muon", _unet().parameters(), lr=0.002, muon_lr=0.02)
    _set_lr({"model": optimizer}, 0.001)  # half way down the schedule
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.01, 0.001])


def test_a_muon_state_resumes_to_the_same_steps():
    def steps(optimizer, model, n):
        for i in range(n):
            torch.manual_seed(i)
            optimizer.zero_grad()
            model.losses(torch.rand(4, 3, 16, 16), (torch.rand(4, 1, 16, 16) < 0.3).float())["loss"].backward()
            optimizer.step()

    straight = _unet()
    optimizer = make_optimizer("muon", straight.parameters(), lr=0.01)
    steps(optimizer, straight, 2)
    state = copy.deepcopy(optimizer.state_dict())  # as saved: loading shares a live state's tensors
    resumed = _unet()
    resumed.load_state_dict(straight.state_dict())
    again = make_optimizer("muon", resumed.parameters(), lr=0.01)
    again.load_state_dict(state)
    steps(optimizer, straight, 1)
    steps(again, resumed, 1)
    assert all(torch.equal(a, b) for a, b in zip(straight.parameters(), resumed.parameters()))


def test_muon_training_reduces_the_loss_in_the_loop():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (32, 3, 16, 16), dtype=np.uint8)
    masks = (rng.random((32, 1, 16, 16)) < 0.4).astype(np.uint8)
    cfg = TrainConfig(epochs=4, batch_size=8, optimizer="muon", lr=0.003, muon_lr=0.02, seed=0)
    result = train(_unet(), images, masks, np.arange(24), np.arange(24, 32), cfg)
    losses = [record["train_loss"] for record in result.history]
    assert losses[-1] < losses[0]


def test_a_bad_muon_rate_is_refused_naming_the_key():
    with pytest.raises(ValueError, match=r"^unet_frm\.training\.muon_lr: must be positive, got 0"):
        parse(TrainConfig, {"optimizer": "muon", "muon_lr": 0}, "unet_frm.training")
