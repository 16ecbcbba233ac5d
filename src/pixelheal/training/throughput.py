"""How a training step runs fast: mixed precision, memory format and compilation (`<arch>.training` keys).

* `precision`: `fp32`; `bf16` (autocast to bfloat16: on CPUs with AVX512-BF16 / AMX through oneDNN, and on
  CUDA GPUs that support it); `fp16` (CUDA only, with a GradScaler so small gradients do not underflow);
  `auto` picks bf16 where the device runs it natively, else fp32. The weights, the optimiser state and
  every checkpoint stay float32: autocast only lowers the precision of the matmuls and convolutions.
* `channels_last`: the networks and the batches in NHWC, the layout oneDNN's and cuDNN's fast convolutions use.
* `compile`: `torch.compile` of the model's networks (in place, so the state_dict keys stay the same). When
  compilation is unavailable (no C++ compiler, an unsupported platform) the run goes on uncompiled and says so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Literal, get_args

import torch

from pixelheal.models.base import InpaintingModel

logger = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` runs bfloat16 convolutions and matmuls natively (not emulated, which is slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False


def autocast_dtype(precision: str, device: torch.device, where: str) -> torch.dtype | None:
    """The autocast dtype `precision` means on `device` (None: float32), refused in one line where it cannot run."""
    if precision == "fp32" or (precision == "auto" and not native_bf16(device)):
        return None
    if precision in ("auto", "bf16"):
        if not native_bf16(device):
            raise ValueError(
                f"{where}: bf16 is not native on this {device.type} device (it would be emulated, slower than "
                "fp32); use precision: auto or fp32"
            )
        return torch.bfloat16
    if device.type != "cuda":
        raise ValueError(f"{where}: fp16 autocast is for CUDA GPUs, not {device.type}; use auto, bf16 or fp32")
    return torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to `dtype` on `device`, or nothing for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler | None:
    """A GradScaler for float16 autocast (its gradients underflow without one); None otherwise."""
    return torch.amp.GradScaler(device.type) if dtype == torch.float16 else None


def memory_format(channels_last: bool) -> torch.memory_format:
    """The layout of the networks and batches."""
    return torch.channels_last if channels_last else torch.contiguous_format


@contextlib.contextmanager
def _quiet_dynamo() -> Iterator[None]:
    """Dynamo's own errors propagate, so a failed probe is one caught exception instead of a silent eager fallback."""
    import torch._dynamo  # noqa: PLC0415 - only when compiling: importing dynamo takes seconds

    suppress = torch._dynamo.config.suppress_errors
    torch._dynamo.config.suppress_errors = False
    try:
        yield
    finally:
        torch._dynamo.config.suppress_errors = suppress


def compile_unavailable(device: torch.device) -> str | None:
    """Why `torch.compile` cannot run on `device` here (compiling a tiny function finds out), or None when it can."""
    probe = torch.compile(lambda x: torch.relu(x) * 2, dynamic=False)
    try:
        with _quiet_dynamo():
            probe(torch.ones(4, device=device))
    except Exception as error:  # noqa: BLE001 - any compiler failure means: train uncompiled
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"{type(error).__name__}: {first[:200]}"
    return None


def compile_networks(model: InpaintingModel, device: torch.device, where: str) -> bool:
    """Compile the model's networks in place (`nn.Module.compile`); False, with one warning, when it cannot."""
    problem = compile_unavailable(device)
    names = model.networks()
    if problem is None and not names:
        problem = f"{type(model).__name__} names no networks to compile"
    if problem is not None:
        logger.warning("%s.compile: training uncompiled: %s", where, problem)
        return False
    for name in names:
        network = getattr(model, name)
        if network is not None:
            network.compile()
    return True
