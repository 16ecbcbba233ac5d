"""Optimisers by name, so parameters choose them: `make_optimizer(kind, params, **kwargs)`.

`muon` (Jordan et al. 2024, "Muon: an optimizer for hidden layers") replaces each step of a convolution's or
linear layer's weight, viewed as the matrix (out, in x kernel), by its momentum orthogonalised with a few
Newton-Schulz iterations, so every direction of the matrix moves by about the same amount; the other
parameters (biases, normalisation, matrices with fewer than MUON_MIN_SIDE rows or columns, such as a 1x1 head
to the image's channels) take AdamW. The learning-rate schedule scales both: a group's `lr_scale` (`muon_lr / lr`
for the matrices) multiplies the scheduled rate (see `training.loop`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.adam import adam

OPTIMIZERS = ("adam", "adamw", "sgd", "muon")
MUON_MOMENTUM = 0.95  # Nesterov momentum of the orthogonalised matrices (the paper's value)
MUON_MIN_SIDE = 16  # narrower matrices (heads to the image's channels, vectors) take AdamW
# The quintic iteration's coefficients from the paper: they push every singular value into about [0.7, 1.2] in
# NS_STEPS steps, which is enough: the update needs orthogonal directions, not exact unit singular values.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5


def make_optimizer(
    kind: str,
    params: Iterable[nn.Parameter],
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    muon_lr: float = 0.02,
) -> torch.optim.Optimizer:
    """An optimiser of `kind` over `params`; SGD uses betas[0] as its momentum, Muon's matrices `muon_lr`."""
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=betas[0], weight_decay=weight_decay)
    if kind == "muon":
        return Muon(params, lr=lr, muon_lr=muon_lr, betas=betas, weight_decay=weight_decay)
    raise ValueError(f"training.optimizer: unknown kind {kind!r}; known: {', '.join(OPTIMIZERS)}")


def takes_muon(param: torch.Tensor) -> bool:
    """Whether Muon orthogonalises `param`'s steps: a weight whose matrix view has MUON_MIN_SIDE rows and columns."""
    return param.ndim >= 2 and param.shape[0] >= MUON_MIN_SIDE and param[0].numel() >= MUON_MIN_SIDE


def orthogonalise(matrix: torch.Tensor) -> torch.Tensor:
    """About the nearest semi-orthogonal matrix to `matrix` (its U V^T), by NS_STEPS Newton-Schulz steps in bfloat16.

    `matrix` is (rows, columns) or a stack (k, rows, columns) of same-shape matrices, each orthogonalised on its own.
    """
    a, b, c = NS_COEFFICIENTS
    x = matrix.bfloat16().reshape(-1, *matrix.shape[-2:])  # (k, rows, columns)
    wide = x.shape[-2] <= x.shape[-1]
    x = x if wide else x.mT  # X X^T is the smaller Gram matrix
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)  # singular values into [0, 1], where the iteration converges
    for _ in range(NS_STEPS):
        gram = torch.bmm(x, x.mT)  # `@` copies the transpose of a stack of one (1, rows, columns): 2x slower
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return (x if wide else x.mT).reshape(matrix.shape).to(matrix.dtype)


class Muon(torch.optim.Optimizer):
    """Muon for the weight matrices (`takes_muon`), AdamW (`betas`, `weight_decay`) for the rest.

    Two parameter groups: the matrices at `muon_lr` and the others at `lr`. Each matrix's step is
    `muon_lr` x sqrt(max(1, rows / columns)) x the orthogonalised Nesterov momentum, so tall matrices
    move as much per entry as square ones.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        *,
        lr: float,
        muon_lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
    ) -> None:
        matrices, others = [], []
        for p in params:
            (matrices if takes_muon(p) else others).append(p)
        groups = [
            {"params": matrices, "lr": muon_lr, "lr_scale": muon_lr / lr, "muon": True},
            {"params": others, "lr": lr, "muon": False},
        ]
        super().__init__([g for g in groups if g["params"]], {"betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None) -> None:  # noqa: ANN001 - torch's signature
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                (self._muon if group["muon"] else self._adam)(group, params)

    def _muon(self, group: dict, params: list[nn.Parameter]) -> None:
        grads = [p.grad for p in params]
        momenta = [self.state[p].setdefault("momentum", torch.zeros_like(p)) for p in params]
        torch._foreach_mul_(momenta, MUON_MOMENTUM)
        torch._foreach_add_(momenta, grads)
        nesterov = torch._foreach_add(grads, momenta, alpha=MUON_MOMENTUM)
        torch._foreach_mul_(params, 1 - group["lr"] * group["weight_decay"])
        # Same-shape matrices are orthogonalised as one batch: a U-Net's dozens of small per-matrix products
        # otherwise cost more in dispatch than in arithmetic (measured: 15.7 -> 9.3 ms per unet_aspp step).
        by_shape: dict[torch.Size, list[int]] = {}
        for i, update in enumerate(nesterov):
            by_shape.setdefault(update.flatten(1).shape, []).append(i)
        for (rows, columns), indices in by_shape.items():
            updates = orthogonalise(torch.stack([nesterov[i].flatten(1) for i in indices]))
            scale = -group["lr"] * max(1.0, rows / columns) ** 0.5  # tall matrices move as much per entry
            for i, update in zip(indices, updates):
                params[i].add_(update.view_as(params[i]), alpha=scale)

    def _adam(self, group: dict, params: list[nn.Parameter]) -> None:
        states = [self.state[p] for p in params]
        for p, state in zip(params, states):
            if not state:
                state.update(step=torch.tensor(0.0), exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
        beta1, beta2 = group["betas"]
        adam(  # torch's own AdamW arithmetic
            params,
            [p.grad for p in params],
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            [s["step"] for s in states],
            decoupled_weight_decay=True,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            eps=1e-8,
            maximize=False,
        )
