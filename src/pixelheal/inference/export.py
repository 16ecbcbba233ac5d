"""Export a trained model's `inpaint` to ONNX or TorchScript, and check the export against PyTorch.

The exported graph keeps the contract of `InpaintingModel.inpaint`: inputs `image` (B, C, H, W)
float32 in [0, 1] and `mask` (B, 1, H, W) float32 with 1 = hole; output `inpainted` (B, C, H, W) =
mask * prediction + (1 - mask) * image, so known pixels pass through unchanged.

Batch, height and width are dynamic where the model computes the same at any size (U-Net sides a
multiple of 2**stages); a hole fill over the whole image (its push-pull pyramid is as deep as the
image is large) or the GAN's context ring (a dilation whose kernel is a fraction of the image size)
fixes height and width at the checkpoint's training size. The GAN's hole_context variant cuts each
hole's box out with data-dependent slices, which no tracer records: `HoleContextInpaint` computes
the same crops and paste-backs as resampling matrices (batched matmuls) with the weights of the
antialiased bilinear resize `models.crops` uses. The sampling architectures (pixelcnn, rowrnn) are refused.

`check_export` runs every export against `model.inpaint` on random images and holes, at the export
size and, when dynamic, at a second size; there a biharmonic fill iterates as in the graph (eager
CPU fills of small images factorise exactly instead, within a grey level of the iterated fill).
onnx and onnxruntime are imported on first use: the parameter pre-flight imports this module for
every `kedro run`.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from pixelheal.config import ConfigError
from pixelheal.models import InpaintingModel, composite
from pixelheal.models.autoregressive import AutoregressiveInpainter
from pixelheal.models.fills import conjugate_gradients_only
from pixelheal.models.gan import GANInpainter, dilate
from pixelheal.models.unet import UNet

Format = Literal["onnx", "torchscript"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript"}  # not .pt: *.pt files are read as checkpoints
OPSET = 18  # the opset torch's ONNX exporter translates to natively; onnxruntime >= 1.14 runs it
TOLERANCE = 1e-4  # max abs difference to PyTorch, in [0, 1] pixel units
INPUTS, OUTPUTS = ["image", "mask"], ["inpainted"]
Runner = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Inpaint(nn.Module):
    """`model.inpaint` as a module's forward: what the exporters trace."""

    def __init__(self, model: InpaintingModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.inpaint(image, mask)


def resize_weights(
    src_start: torch.Tensor,
    src_len: torch.Tensor,
    src_total: int,
    dst_start: torch.Tensor,
    dst_len: torch.Tensor,
    dst_total: int,
) -> torch.Tensor:
    """(B, dst_total, src_total) matrices resizing each row's source span onto its destination span.

    The weights of torch's antialiased bilinear resize (`F.interpolate(..., antialias=True)`, its CPU
    kernel's window and float32 / float64 steps), so a weight is zero exactly where torch's is (crop
    masks threshold at > 0); destination rows outside the span are zero. Spans: (B,) int64 start, length.
    """
    device = src_start.device
    d = torch.arange(dst_total, device=device)[None, :, None] - dst_start[:, None, None]  # (B, D, 1) in the span
    s = torch.arange(src_total, device=device)[None, None, :] - src_start[:, None, None]  # (B, 1, S)
    scale = (src_len.float() / dst_len.clamp_min(1).float())[:, None, None]  # (B, 1, 1) float32
    support = torch.where(scale >= 1, scale, torch.ones_like(scale))  # the triangle's half-width in source pixels
    center = (scale.double() * (d.double() + 0.5)).float()  # (B, D, 1)
    invscale = (1.0 / support.double()).float()
    x = (((s.float() - center).double() + 0.5) * invscale.double()).float()
    weights = (1 - x.abs()).clamp_min(0)  # (B, D, S)
    # torch sums over a window [first, first + count) of source pixels whose float rounding can drop
    # a pixel of tiny weight at either end: the same window, so the same weights are zero.
    first = ((center - support).double() + 0.5).long().clamp_min(0)  # truncation toward zero, as C++ casts
    last = torch.minimum(((center + support).double() + 0.5).long(), src_len[:, None, None])
    count = (last - first).clamp_min(0).clamp_max(torch.ceil(support).long() * 2 + 1)
    inside = (s >= first) & (s < first + count) & (d >= 0) & (d < dst_len[:, None, None])
    weights = torch.where(inside, weights, torch.zeros_like(weights))
    return weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)  # (B, D, S)


def _span(hit: torch.Tensor, ring: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(start, end) of the True entries of each row of `hit` (B, N), grown by `ring`, clipped: `crops.hole_bbox`."""
    n = hit.shape[1]
    index = torch.arange(n, device=hit.device)
    start = torch.where(hit, index, torch.full_like(index, n)).amin(1)
    end = torch.where(hit, index + 1, torch.zeros_like(index)).amax(1)
    return (start - ring).clamp_min(0), torch.minimum(end + ring, torch.full_like(end, n))


def _squared(start: torch.Tensor, end: torch.Tensor, side: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(start, length) of a span grown to `side` (as far as `n` allows), shifted inside: `crops.square_box`."""
    length = torch.minimum(side, torch.full_like(side, n))
    start = start - torch.div(length - (end - start), 2, rounding_mode="floor")
    return torch.minimum(start.clamp_min(0), n - length), length


class GANInpaint(nn.Module):
    """`inpaint` of a GAN with its hole_context boxes, crops and pastes as tensor arithmetic (see `models.crops`).

    hole_context, per image: the hole's box grown by the context ring and squared inside the image,
    resized to crop_size x crop_size, generated, resized back into the box; outside the boxes (and in
    images without a hole) the prediction is the image, as `GANInpainter.forward` returns it.
    `ring_px`: with `ring_mask`, the ring's width at the (fixed) export size, as `GANInpainter` rounds
    it from the image size in Python, which the TorchScript tracer cannot do on its traced sizes.
    """

    def __init__(self, model: GANInpainter, ring_px: int | None) -> None:
        super().__init__()
        self.model, self.ring_px = model, ring_px

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        channel = mask if self.ring_px is None else dilate(mask, self.ring_px)  # (B, 1, H, W): the generator's
        if self.model.config.variant == "whole_image":
            prediction = self.model.predict(image, mask, channel)
        else:
            prediction = self._hole_context(image, mask, channel)
        return composite(image, mask, prediction.clamp(0, 1))

    def _hole_context(self, image: torch.Tensor, mask: torch.Tensor, channel: torch.Tensor) -> torch.Tensor:
        config, (height, width) = self.model.config, image.shape[-2:]
        masks = mask if self.ring_px is None else torch.cat([mask, channel], 1)  # (B, K, H, W): hole (+ ring)
        holes = mask[:, 0] > 0.5  # (B, H, W), contract: 1 = hole
        rows, cols = holes.any(2), holes.any(1)  # (B, H), (B, W)
        shorter = torch.minimum(torch.full((), height), torch.full((), width))
        ring = torch.round(config.context_ring * shorter.double()).long()  # round half to even, as Python's round
        top, bottom = _span(rows, ring)
        left, right = _span(cols, ring)
        side = torch.maximum(bottom - top, right - left)
        top, box_h = _squared(top, bottom, side, height)
        left, box_w = _squared(left, right, side, width)

        size, zero = config.crop_size, torch.zeros_like(top)
        full = torch.full_like(top, size)
        crop_rows = resize_weights(top, box_h, height, zero, full, size)[:, None]  # (B, 1, S, H)
        crop_cols = resize_weights(left, box_w, width, zero, full, size)[:, None]  # (B, 1, S, W)
        crop_images = crop_rows @ image @ crop_cols.transpose(-1, -2)  # (B, C, S, S)
        # A cell that any hole pixel feeds is a hole, as in `crops.hole_crops`.
        crop_masks = (crop_rows @ masks @ crop_cols.transpose(-1, -2) > 0).to(image.dtype)  # (B, K, S, S)
        generated = self.model.predict(crop_images, crop_masks[:, :1], crop_masks[:, -1:])  # (B, C, S, S)

        back_rows = resize_weights(zero, full, size, top, box_h, height)[:, None]  # (B, 1, H, S)
        back_cols = resize_weights(zero, full, size, left, box_w, width)[:, None]  # (B, 1, W, S)
        pasted = back_rows @ generated @ back_cols.transpose(-1, -2)  # (B, C, H, W)
        # Resampling rows sum to 1 inside a box and to 0 outside it.
        in_box = (back_rows.sum(-1, keepdim=True) > 0) & (back_cols.sum(-1)[..., None, :] > 0)  # (B, 1, H, W)
        in_box = in_box & rows.any(1)[:, None, None, None]
        return torch.where(in_box, pasted, image)


@dataclass(frozen=True)
class ExportPlan:
    """What gets traced, and which image sizes the traced graph computes exactly."""

    model: InpaintingModel  # what the export must compute: its `inpaint`
    module: nn.Module  # (image, mask) → inpainted, traceable
    image_size: tuple[int, int]  # (H, W) of the example the graph is traced at
    fixed_reason: str | None  # why height and width are fixed at image_size; None: dynamic
    multiple: int  # dynamic sides must be multiples of this

    @property
    def dynamic(self) -> bool:
        return self.fixed_reason is None

    def second_size(self) -> tuple[int, int]:
        """A larger, non-square size the check also runs at (a multiple of `multiple`)."""
        height, width = self.image_size
        step = max(self.multiple, 4)
        return (height + 2 * step, width + step)

    def metadata(self, arch: str) -> dict[str, str]:
        """Facts a consumer of the file needs, stored in it (ONNX metadata_props, TorchScript extra file)."""
        height, width = self.image_size
        sizes = (
            f"fixed {height}x{width}: {self.fixed_reason}"
            if self.fixed_reason
            else f"any, sides a multiple of {self.multiple}"
        )
        return {
            "pixelheal.arch": arch,
            "pixelheal.training_size": f"{height}x{width}",
            "pixelheal.sizes": sizes,
            "pixelheal.contract": "image (B,C,H,W) float32 in [0,1], mask (B,1,H,W) float32 1 = hole -> composited inpainted image",
        }


def plan_export(model: InpaintingModel, arch: str, image_size: tuple[int, int]) -> ExportPlan:
    """The module to trace for `model`; a sampling architecture is refused with one line (`model: ...`)."""
    if isinstance(model, AutoregressiveInpainter):
        raise ConfigError(
            "model",
            f"{arch} inpaints by sampling the hole one sub-pixel at a time in raster order (a network pass and a "
            "random draw per hole value), which is no single fixed graph; export a deterministic architecture",
        )
    config = getattr(model, "config", None)
    crops = isinstance(model, GANInpainter) and model.config.variant == "hole_context"
    fill = getattr(config, "hole_fill", "zero")
    reason = None
    if getattr(config, "ring_mask", False):
        reason = "the context ring is a dilation as wide as a fraction of the image size"
    elif fill != "zero" and not crops:  # a crop is always crop_size: its fill's pyramid is fixed
        reason = f"the {fill} hole fill's pyramid is as deep as the image is large"
    unets = [] if crops else [m for m in model.modules() if isinstance(m, UNet)]
    multiple = max((2 ** len(unet.encoders) for unet in unets), default=1)
    module = Inpaint(model)
    if isinstance(model, GANInpainter):
        ring_px = round(model.config.context_ring * min(image_size)) if model.config.ring_mask else None
        module = GANInpaint(model, ring_px)
    return ExportPlan(model, module.eval(), tuple(image_size), reason, multiple)


def _example(channels: int, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of two for tracing: the batch axis stays dynamic only when it is more than one."""
    return torch.rand(2, channels, *size), torch.ones(2, 1, *size)


def export_onnx(plan: ExportPlan, channels: int, metadata: dict[str, str]) -> bytes:
    """The ONNX model of `plan` (opset OPSET, dynamo exporter), as the bytes of one self-contained file."""
    import onnx  # heavy: on first use

    axes = {0: torch.export.Dim("batch")}
    if plan.dynamic:
        axes |= {2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
    dynamic = {"image": axes, "mask": axes}
    with torch.no_grad():
        program = torch.onnx.export(
            plan.module,
            _example(channels, plan.image_size),
            input_names=INPUTS,
            output_names=OUTPUTS,
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes=dynamic,
            external_data=False,
            verbose=False,
        )
    proto = program.model_proto
    onnx.helper.set_model_props(proto, metadata)
    return proto.SerializeToString()


class FixedSize(nn.Module):
    """A traced module that refuses any other image size than the one it was traced at (scripted, not traced).

    ONNX files state fixed sizes in their input shapes; a TorchScript file would silently compute garbage.
    """

    def __init__(self, traced: nn.Module, height: int, width: int) -> None:
        super().__init__()
        self.traced, self.height, self.width = traced, height, width

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if image.shape[-2] != self.height or image.shape[-1] != self.width:
            raise ValueError("this export takes images of " + str(self.height) + "x" + str(self.width) + " only")
        return self.traced(image, mask)


def export_torchscript(plan: ExportPlan, channels: int, metadata: dict[str, str]) -> bytes:
    """The TorchScript module of `plan` (`torch.jit.trace`), as the bytes of a `torch.jit.save` file."""
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer warns about every Python value it freezes and that it is deprecated; `check_export`
        # verifies the traced module numerically instead.
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(plan.module, _example(channels, plan.image_size), check_trace=False)
        if not plan.dynamic:
            traced = torch.jit.script(FixedSize(traced, *plan.image_size))
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"pixelheal.json": json.dumps(metadata)})
    return buffer.getvalue()


def export_model(plan: ExportPlan, fmt: Format, channels: int, metadata: dict[str, str]) -> bytes:
    """The bytes of `plan` exported as `fmt` (one of FORMATS)."""
    if fmt not in FORMATS:
        raise ConfigError("format", f"expected one of {list(FORMATS)}, got {fmt!r}")
    return (export_onnx if fmt == "onnx" else export_torchscript)(plan, channels, metadata)


def _onnx_runner(data: bytes) -> Runner:
    import onnxruntime  # heavy: on first use

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return lambda image, mask: torch.from_numpy(session.run(None, {"image": image.numpy(), "mask": mask.numpy()})[0])


def _torchscript_runner(data: bytes) -> Runner:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation, stated in the README
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    return lambda image, mask: module(image, mask)


def random_batch(channels: int, size: tuple[int, int], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Three random images (B=3) and masks: a box hole, scattered hole pixels, and no hole at all."""
    height, width = size
    images = torch.rand(3, channels, height, width, generator=generator)
    masks = torch.zeros(3, 1, height, width)
    h, w = (int(torch.randint(1, max(n // 2, 1) + 1, (), generator=generator)) for n in size)
    top, left = (
        int(torch.randint(0, height - h + 1, (), generator=generator)),
        int(torch.randint(0, width - w + 1, (), generator=generator)),
    )
    masks[0, :, top : top + h, left : left + w] = 1
    masks[1] = (torch.rand(1, height, width, generator=generator) < 0.2).float()
    return images, masks


def check_export(
    data: bytes, fmt: Format, plan: ExportPlan, channels: int, *, tolerance: float = TOLERANCE, seed: int = 0
) -> dict[str, float]:
    """Max abs difference of the export to `plan.model.inpaint` per checked size ("HxW"); over `tolerance` raises.

    Sizes: the export size and, for a dynamic export, `plan.second_size()`.
    """
    run = _onnx_runner(data) if fmt == "onnx" else _torchscript_runner(data)
    generator = torch.Generator().manual_seed(seed)
    sizes = [plan.image_size] + ([plan.second_size()] if plan.dynamic else [])
    differences = {}
    for size in sizes:
        images, masks = random_batch(channels, size, generator)
        with torch.no_grad(), conjugate_gradients_only():  # the solver an exported graph runs
            expected = plan.model.inpaint(images, masks)
            difference = (run(images, masks) - expected).abs().max().item()
        name = f"{size[0]}x{size[1]}"
        if not difference <= tolerance:  # NaN fails too
            raise ValueError(
                f"the {fmt} export differs from PyTorch by {difference:.3g} at {name} (tolerance {tolerance:g})"
            )
        differences[name] = difference
    return differences
