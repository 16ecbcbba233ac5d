"""Which torch device a `device:` parameter means; shared by training, evaluation and inference."""

from __future__ import annotations

import torch


def resolve_device(device: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; anything else is passed to torch."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
