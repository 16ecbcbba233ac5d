"""Inpainting architectures: a registry from architecture key to its declared hyper-parameters and builder.

Adding an architecture means one module (a frozen config dataclass and a model built from it) and
one entry here; the training loop does not change. Every model is an `InpaintingModel` (see
`pixelheal.models.base` for the contract; sampling ones subclass `AutoregressiveInpainter`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pixelheal.config import parse
from pixelheal.devices import resolve_device
from pixelheal.models.base import InpaintingModel, composite
from pixelheal.models.checkpoint import Checkpoint, load_weights, read_checkpoint, save_checkpoint
from pixelheal.models.fills import masked_input
from pixelheal.models.gan import GANConfig, GANInpainter
from pixelheal.models.pixelcnn import PixelCNNConfig, PixelCNNInpainter
from pixelheal.models.pixelheal_net import PixelHealConfig, PixelHealInpainter
from pixelheal.models.rowrnn import RowRNNConfig, RowRNNInpainter
from pixelheal.models.unet import UNetASPPConfig, UNetConfig, unet_aspp, unet_frm


@dataclass(frozen=True)
class Architecture:
    """One architecture: its declared hyper-parameters (a frozen dataclass) and the builder of its model."""

    config: type
    build: Callable[[Any], InpaintingModel]


ARCHITECTURES: dict[str, Architecture] = {
    "unet_frm": Architecture(UNetConfig, unet_frm),
    "unet_aspp": Architecture(UNetASPPConfig, unet_aspp),
    "gan": Architecture(GANConfig, GANInpainter),
    "pixelcnn": Architecture(PixelCNNConfig, PixelCNNInpainter),
    "rowrnn": Architecture(RowRNNConfig, RowRNNInpainter),
    "pixelheal": Architecture(PixelHealConfig, PixelHealInpainter),
}


def model_config(kind: str, hparams: dict[str, Any], where: str | None = None) -> Any:
    """The declared hyper-parameters of architecture `kind`, checked; errors name `<where>.<key>`."""
    if kind not in ARCHITECTURES:
        raise ValueError(f"{where or 'model'}.kind: unknown architecture {kind!r}; known: {sorted(ARCHITECTURES)}")
    return parse(ARCHITECTURES[kind].config, hparams, where or f"{kind}.model")


def make_model(kind: str, *, where: str | None = None, **hparams: Any) -> InpaintingModel:
    """Build the architecture `kind` from its hyper-parameters (`where`: the parameter block's name)."""
    config = model_config(kind, hparams, where)
    return ARCHITECTURES[kind].build(config)


def from_checkpoint(checkpoint: Checkpoint) -> InpaintingModel:
    """Rebuild a ready-to-use model (eval mode, on the CPU) from a checkpoint.

    Hyper-parameters the architecture refuses, or weights that do not fit them (a file edited or
    assembled by hand), fail with one line naming the checkpoint's file.
    """
    if checkpoint.arch not in ARCHITECTURES:
        raise ValueError(
            f"{checkpoint.source}: unknown architecture {checkpoint.arch!r}; known: {sorted(ARCHITECTURES)}"
        )
    try:
        model = make_model(checkpoint.arch, where=f"{checkpoint.source}: hparams", **checkpoint.hparams)
    except TypeError:  # hparams that are not a mapping of keyword arguments
        raise ValueError(f"{checkpoint.source}: hparams is not a mapping: {checkpoint.hparams!r}") from None
    load_weights(model, checkpoint.model, checkpoint.source)
    return model.eval()


def load(path: str | Path, device: str | torch.device = "cpu") -> InpaintingModel:
    """Rebuild a ready-to-use model (eval mode) from a checkpoint file alone; "auto" picks the device."""
    target = device if isinstance(device, torch.device) else resolve_device(device)
    return from_checkpoint(read_checkpoint(path)).to(target)


__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "Checkpoint",
    "InpaintingModel",
    "composite",
    "from_checkpoint",
    "load",
    "make_model",
    "masked_input",
    "model_config",
    "read_checkpoint",
    "save_checkpoint",
]
