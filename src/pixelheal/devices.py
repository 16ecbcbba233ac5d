"""Which torch device a `device:` parameter means; shared by training, evaluation and inference."""

from __future__ import annotations

import torch

DEVICE_HINT = "expected auto, cpu, cuda, cuda:<index> or mps"


def resolve_device(device: str, where: str = "device") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; anything else must exist on this machine.

    `where` is the parameter the value came from (e.g. `unet_frm.training.device`): an unknown or
    unavailable device is refused with one line naming it, instead of failing later inside torch.
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError):  # torch's own message lists every backend it knows
        raise ValueError(f"{where}: unknown device {device!r}; {DEVICE_HINT}") from None
    problem = _unavailable(target)
    if problem:
        raise ValueError(f"{where}: device {device!r} is not available: {problem}; use auto or cpu")
    return target


def _unavailable(target: torch.device) -> str | None:
    """Why `target` cannot be used on this machine, or None when it can (other backends: torch decides)."""
    if target.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            return "no CUDA GPU found"
        if target.index is not None and target.index >= count:
            return f"this machine has {count} CUDA GPU(s), numbered from 0"
    if target.type == "mps" and not torch.backends.mps.is_available():
        return "no Apple MPS device found"
    return None
