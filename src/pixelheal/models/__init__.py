"""Inpainting architectures: a registry from architecture key to builder, and checkpoint loading.

Adding an architecture means adding a module with a builder here; the training loop does not
change. Every model is an `InpaintingModel` (see `pixelheal.models.base` for the contract).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pixelheal.models.base import InpaintingModel, composite, masked_input
from pixelheal.models.gan import gan
from pixelheal.models.pixelcnn import pixelcnn
from pixelheal.models.rowrnn import rowrnn
from pixelheal.models.unet import unet_aspp, unet_frm

ARCHITECTURES: dict[str, Callable[..., InpaintingModel]] = {
    "unet_frm": unet_frm,
    "unet_aspp": unet_aspp,
    "gan": gan,
    "pixelcnn": pixelcnn,
    "rowrnn": rowrnn,
}


def make_model(kind: str, **hparams: Any) -> InpaintingModel:
    """Build the architecture `kind` from its hyper-parameters."""
    if kind not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {kind!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    try:
        return ARCHITECTURES[kind](**hparams)
    except TypeError as error:  # an unexpected keyword in the parameters block
        raise ValueError(f"{kind}.model: {error}") from None


def from_checkpoint(checkpoint: dict[str, Any]) -> InpaintingModel:
    """Rebuild a ready-to-use model (eval mode, on the CPU) from a checkpoint dict."""
    model = make_model(checkpoint["arch"], **checkpoint["hparams"])
    model.load_state_dict(checkpoint["model"])
    return model.eval()


def load(path: str | Path, device: str | torch.device = "cpu") -> InpaintingModel:
    """Rebuild a ready-to-use model (eval mode) from a checkpoint file alone."""
    return from_checkpoint(read_checkpoint(path)).to(device)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict, with one clear message when the file is missing or not a checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a readable PixelHeal checkpoint: {error}") from None
    if not isinstance(checkpoint, dict) or not {"arch", "hparams", "model"} <= checkpoint.keys():
        raise ValueError(f"{path} is not a PixelHeal checkpoint (needs arch, hparams and model)")
    return checkpoint


__all__ = ["ARCHITECTURES", "InpaintingModel", "composite", "from_checkpoint", "load", "make_model", "masked_input", "read_checkpoint"]
