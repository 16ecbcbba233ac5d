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
from pixelheal.models.base import InpaintingModel, composite
from pixelheal.models.checkpoint import Checkpoint, read_checkpoint, save_checkpoint
from pixelheal.models.fills import masked_input
from pixelheal.models.gan import GANConfig, GANInpainter
from pixelheal.models.pixelcnn import PixelCNNConfig, PixelCNNInpainter
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
    """Rebuild a ready-to-use model (eval mode, on the CPU) from a checkpoint."""
    model = make_model(checkpoint.arch, **checkpoint.hparams)
    model.load_state_dict(checkpoint.model)
    return model.eval()


def load(path: str | Path, device: str | torch.device = "cpu") -> InpaintingModel:
    """Rebuild a ready-to-use model (eval mode) from a checkpoint file alone."""
    return from_checkpoint(read_checkpoint(path)).to(device)


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
