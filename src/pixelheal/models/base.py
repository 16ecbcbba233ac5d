"""The interface every inpainting architecture implements, so one training loop serves them all.

Contract: images are float tensors in [0, 1] of shape (B, C, H, W); masks are float tensors of
shape (B, 1, H, W) with 1 = hole (missing), 0 = known. Architectures that want another range
(e.g. [-1, 1]) convert inside their own methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


def optimise(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    """Backward and step; with a GradScaler (float16 autocast) the loss is scaled and inf/NaN steps are skipped."""
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)


def composite(images: torch.Tensor, masks: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
    """Keep the known pixels of `images` and take the hole pixels from `predictions`."""
    return masks * predictions + (1 - masks) * images


def mean_completion(images: torch.Tensor, masks: torch.Tensor, draws: list[torch.Tensor]) -> torch.Tensor:
    """The point estimate of sampled completions `draws`: their mean in the hole, the known pixels exact."""
    return draws[0] if len(draws) == 1 else composite(images, masks, torch.stack(draws).mean(0))


class InpaintingModel(nn.Module):
    """Base class: a network plus how it is trained (`losses`, `training_step`) and how it inpaints.

    Subclasses implement `forward(images, masks)` and `losses`. For regression architectures
    `forward` is the whole-image prediction in [0, 1], which the default `inpaint` composites;
    autoregressive ones return their raw output (logits) and override `inpaint` with sampling.
    Architectures with several networks or optimisers (GANs) override the training step.
    """

    def losses(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms of one batch; the key "loss" holds the total that is minimised."""
        raise NotImplementedError

    def make_optimizers(
        self, build: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
    ) -> dict[str, torch.optim.Optimizer]:
        """Optimisers by name, each made by `build`; architectures with several networks override."""
        return {"model": build(self.parameters())}

    def networks(self) -> tuple[str, ...]:
        """Attribute names of the submodules `training_step` runs through their `forward`, and that hold every
        trainable parameter: what data-parallel training wraps (`torch.nn.parallel.DistributedDataParallel`
        averages gradients only over calls to its forward). () (the default): this architecture trains on one
        process only, e.g. when its step indexes an `nn.ModuleList` or reads a weight directly.
        """
        return ()

    def training_step(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        optimizers: dict[str, torch.optim.Optimizer],
        scaler: torch.amp.GradScaler | None = None,
    ) -> dict[str, float]:
        """One optimisation step on a batch; returns the loss terms as floats. `scaler`: see `optimise`."""
        (optimizer,) = optimizers.values()
        optimizer.zero_grad(set_to_none=True)
        terms = self.losses(images, masks)
        optimise(terms["loss"], optimizer, scaler)
        return {name: value.item() for name, value in terms.items()}

    @torch.no_grad()
    def validation_step(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
        """Loss terms plus the PSNR of the composited completion, averaged over the batch."""
        terms = {name: value.item() for name, value in self.losses(images, masks).items()}
        mse = (self.inpaint(images, masks) - images).square().flatten(1).mean(1)
        terms["psnr"] = (-10 * torch.log10(mse.clamp_min(1e-10))).mean().item()
        return terms

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Composited completion in [0, 1]: known pixels are returned unchanged."""
        return composite(images, masks, self(images, masks).clamp(0, 1))

    @torch.no_grad()
    def inpaint_samples(self, images: torch.Tensor, masks: torch.Tensor, n_samples: int) -> list[torch.Tensor]:
        """Several completions per image; deterministic architectures return one."""
        return [self.inpaint(images, masks)]

    @property
    def stochastic(self) -> bool:
        """Whether completions are drawn at random: the architecture overrides `inpaint_samples`."""
        return type(self).inpaint_samples is not InpaintingModel.inpaint_samples

    @property
    def samples_when_inpainting(self) -> bool:
        """Whether `inpaint` returns one draw of `inpaint_samples` (a sampling architecture not set to greedy)."""
        return self.stochastic

    @torch.no_grad()
    def inpaint_draws(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        n_samples: int,
        generator: torch.Generator | None = None,
        *,
        max_batch: int | None = None,
    ) -> list[torch.Tensor]:
        """`n_samples` sampled completions in [0, 1] (their point estimate: `mean_completion`); deterministic
        architectures give `inpaint` once.

        `generator` (None: torch's global RNG) draws the samples; `max_batch` caps the images of one
        sampling call (copies x batch, at least one copy per call), None draws every copy in one call.
        The draws depend on how the copies are grouped.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}")
        if not self.stochastic:
            return [self.inpaint(images, masks)]
        copies = n_samples if max_batch is None else max(1, max_batch // max(len(images), 1))
        draws = []
        for start in range(0, n_samples, copies):
            # contract: an architecture that overrides `inpaint_samples` takes `generator`
            draws += self.inpaint_samples(images, masks, min(copies, n_samples - start), generator=generator)
        return draws

    @torch.no_grad()
    def test_metrics(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Architecture-specific per-image test metrics (e.g. "nll_bpd"), each of shape (B,)."""
        return {}
