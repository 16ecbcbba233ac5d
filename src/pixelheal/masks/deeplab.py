"""Object-shaped holes from a DeepLabV3 semantic segmentation (as LaMa's segmentation masks)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation import (
    DeepLabV3_MobileNet_V3_Large_Weights,
    DeepLabV3_ResNet50_Weights,
    deeplabv3_mobilenet_v3_large,
    deeplabv3_resnet50,
)

from pixelheal.config import ConfigError, parse, require
from pixelheal.masks.base import GENERATOR_BLOCK, MaskGenerator, check_image, require_in
from pixelheal.masks.irregular import IrregularMaskGenerator

logger = logging.getLogger(__name__)

KIND = "deeplabv3"
# The label order of torchvision's COCO_WITH_VOC_LABELS_V1 weights (index = class id).
VOC_CLASSES = (
    "__background__",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
BACKBONES = {
    "mobilenet_v3_large": (
        deeplabv3_mobilenet_v3_large,
        DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1,
    ),
    "resnet50": (deeplabv3_resnet50, DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1),
}
MOVE_TRIES = 16  # random shifts tried per moved mask before the corners are tried
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DeepLabV3Config:
    """The declared parameters of a DeepLabV3 generator; checking them loads no weights.

    `weights` is "default" (torchvision's COCO/VOC file from the torch hub cache, never
    downloaded), "none" (a random network) or a local state_dict path; `classes` are VOC names
    or ids (None = every object class); `dilation` is in pixels at the image scale; `fallback`
    is a generator block ({"kind": ..., **parameters}) used where no object fits, None for
    medium irregular strokes.
    """

    backbone: str = "mobilenet_v3_large"
    weights: str = "default"
    classes: tuple[str | int, ...] | None = None
    selection: Literal["largest", "all"] = "largest"
    dilation: int = 0
    min_area: float = 0.02
    max_area: float = 0.5
    mode: Literal["object", "moved"] = "object"
    input_size: int = 256
    batch_size: int = 16
    fallback: dict[str, Any] | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        require(self.backbone in BACKBONES, "backbone", f"expected one of {list(BACKBONES)}, got {self.backbone!r}")
        _class_ids(self.classes)  # refuses unknown names and ids
        require(self.dilation >= 0, "dilation", f"must be >= 0, got {self.dilation!r}")
        require_in("min_area", self.min_area, 0.0, 1.0)
        require_in("max_area", self.max_area, 0.0, 1.0)
        require(self.min_area <= self.max_area, "min_area", f"{self.min_area} exceeds max_area {self.max_area}")
        require(self.input_size >= 1, "input_size", f"must be >= 1, got {self.input_size!r}")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size!r}")
        _check_device(self.device)
        if self.fallback is not None:
            from pixelheal.masks import mask_generator_config  # late: the registry imports this module

            mask_generator_config(self.fallback, "fallback")


class DeepLabV3MaskGenerator:
    """Holes shaped like segmented objects; images without a usable object use the fallback.

    `model` (a network returning {"out": N×21×S×S logits}) replaces `backbone` / `weights`.
    """

    name = KIND

    def __init__(self, config: DeepLabV3Config | None = None, model: nn.Module | None = None) -> None:
        self.config = config if config is not None else DeepLabV3Config()
        self.class_ids = _class_ids(self.config.classes)
        self.fallback = _build_fallback(self.config.fallback)
        self.device = torch.device(self.config.device)
        self.model = model if model is not None else load_deeplabv3(self.config.backbone, self.config.weights)
        if self.model is not None:
            self.model.eval().to(self.device)

    @classmethod
    def from_model(cls, model: nn.Module, *, where: str = GENERATOR_BLOCK, **params: Any) -> DeepLabV3MaskGenerator:
        """Wrap a ready segmentation network (returning {"out": logits}) instead of loading one."""
        return cls(parse(DeepLabV3Config, params, where), model=model)

    def __call__(
        self, height: int, width: int, rng: np.random.Generator, image: np.ndarray | None = None
    ) -> np.ndarray:
        """Return a (1, H, W) uint8 mask for one C×H×W uint8 image."""
        if image is None:
            raise ValueError(f"masks.{KIND}: needs the image to segment, got image=None")
        check_image(KIND, image, height, width)
        masks, _ = self.generate_batch(image[None], [rng])
        return masks[0]

    def generate_batch(self, images: np.ndarray, rngs: Sequence[np.random.Generator]) -> tuple[np.ndarray, list[str]]:
        """N×C×H×W uint8 images -> (N×1×H×W uint8 masks, per-image generator name used)."""
        _check_batch(images, rngs)
        n, _, height, width = images.shape
        masks = np.zeros((n, 1, height, width), np.uint8)
        used: list[str] = []
        for start in range(0, n, self.config.batch_size):
            chunk = images[start : start + self.config.batch_size]
            labels = self.segment(chunk) if self.model is not None else [None] * len(chunk)
            for offset, label in enumerate(labels):
                i = start + offset
                region = self._region(label) if label is not None else None
                if region is None:
                    masks[i] = self.fallback(height, width, rngs[i], image=images[i])
                    used.append(self.fallback.name)
                else:
                    masks[i, 0] = _move(region, rngs[i]) if self.config.mode == "moved" else region
                    used.append(self.name)
        return masks, used

    def segment(self, images: np.ndarray) -> np.ndarray:
        """N×C×H×W uint8 images -> N×H×W int64 class labels at the image size."""
        height, width = images.shape[2:]
        # contract: uint8 in [0, 255] -> float in [0, 1], then ImageNet normalisation
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).float() / 255.0
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x  # (B, 3, H, W): gray -> RGB
        x = F.interpolate(x, size=(self.config.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        with torch.inference_mode():
            logits = self.model((x - mean) / std)["out"]  # (B, classes, S, S)
        labels = logits.argmax(dim=1, keepdim=True).float()  # (B, 1, S, S)
        labels = F.interpolate(labels, size=(height, width), mode="nearest")  # (B, 1, H, W)
        return labels[:, 0].long().cpu().numpy()

    def _region(self, labels: np.ndarray) -> np.ndarray | None:
        """(H, W) uint8 object region, or None when empty or outside [min_area, max_area]."""
        region = np.isin(labels, self.class_ids).astype(np.uint8)
        if not region.any():
            return None
        if self.config.selection == "largest":
            region = _largest_component(region)
        if self.config.dilation:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * self.config.dilation + 1,) * 2)
            region = cv2.dilate(region, kernel)
        if not self.config.min_area <= float(region.mean()) <= self.config.max_area:
            return None
        return region


def load_deeplabv3(backbone: str, weights: str) -> nn.Module | None:
    """Build the network; None (after one warning) when the weights cannot be had."""
    builder, pretrained = BACKBONES[backbone]
    if weights == "none":
        return builder(weights=None, weights_backbone=None, num_classes=len(VOC_CLASSES), aux_loss=False)
    if weights == "default":
        # torchvision's own cache location; never download, only reuse a cached file
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(pretrained.url)
    else:
        path = Path(weights)
    if not path.is_file():
        logger.warning(
            "deeplabv3: weights file %s not found (weights=%r); every image will use the fallback "
            "generator. Place the file there or set weights to a local state_dict path.",
            path,
            weights,
        )
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        aux = any(key.startswith("aux_classifier.") for key in state)
        model = builder(weights=None, weights_backbone=None, num_classes=len(VOC_CLASSES), aux_loss=aux)
        model.load_state_dict(state)
    # a corrupt or foreign file can fail in pickle, torch or key matching; all mean "unusable"
    except Exception as exc:  # noqa: BLE001
        logger.warning(
            "deeplabv3: could not load weights from %s (%s: %s); every image will use the fallback generator.",
            path,
            type(exc).__name__,
            exc,
        )
        return None
    return model


def _largest_component(region: np.ndarray) -> np.ndarray:
    """Keep the largest 8-connected component (the first one on ties)."""
    count, components, stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
    if count <= 2:
        return region
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (components == largest).astype(np.uint8)


def _move(region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Translate the region's shape to where it overlaps the region least (LaMa-style)."""
    ys, xs = np.nonzero(region)
    shape = region[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    max_top, max_left = region.shape[0] - shape.shape[0], region.shape[1] - shape.shape[1]
    candidates = [(int(rng.integers(0, max_top + 1)), int(rng.integers(0, max_left + 1))) for _ in range(MOVE_TRIES)]
    best = min(candidates, key=lambda pos: _overlap(region, shape, pos))
    if _overlap(region, shape, best) > 0:
        # random shifts all hit the object: the corners are the farthest places left
        corners = [(0, 0), (0, max_left), (max_top, 0), (max_top, max_left)]
        best = min([best, *corners], key=lambda pos: _overlap(region, shape, pos))
    moved = np.zeros_like(region)
    moved[best[0] : best[0] + shape.shape[0], best[1] : best[1] + shape.shape[1]] = shape
    return moved


def _overlap(region: np.ndarray, shape: np.ndarray, pos: tuple[int, int]) -> int:
    """Pixels shared by `region` and `shape` placed with its top-left corner at `pos`."""
    window = region[pos[0] : pos[0] + shape.shape[0], pos[1] : pos[1] + shape.shape[1]]
    return int(np.count_nonzero(window & shape))


def _class_ids(classes: tuple[str | int, ...] | None) -> list[int]:
    """VOC class ids of class names or ids; None = every non-background class."""
    if classes is None:
        return list(range(1, len(VOC_CLASSES)))
    require(len(classes) > 0, "classes", "must be a non-empty list of names or ids")
    return [_class_id(item) for item in classes]


def _class_id(item: str | int) -> int:
    """The VOC id of one class name or id."""
    if isinstance(item, str) and item in VOC_CLASSES[1:]:
        return VOC_CLASSES.index(item)
    valid_id = isinstance(item, (int, np.integer)) and not isinstance(item, bool) and 1 <= item < len(VOC_CLASSES)
    require(valid_id, "classes", f"unknown class {item!r}; valid: ids 1-20 or {list(VOC_CLASSES[1:])}")
    return int(item)


def _check_device(device: str) -> None:
    """Refuse an unparsable device, or CUDA where it is not available."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError("device", f"invalid device {device!r} ({exc})") from None
    require(parsed.type != "cuda" or torch.cuda.is_available(), "device", "CUDA was requested but is not available")


def _build_fallback(block: dict[str, Any] | None) -> MaskGenerator:
    """The fallback generator of a checked block; None = medium irregular strokes."""
    if block is None:
        return IrregularMaskGenerator()
    from pixelheal.masks import make_mask_generator  # late: the registry imports this module

    return make_mask_generator(**block)


def _check_batch(images: np.ndarray, rngs: Sequence[np.random.Generator]) -> None:
    """Images must be N×C×H×W uint8 with C in {1, 3}, one rng per image."""
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.shape[1] not in (1, 3):
        shape = getattr(images, "shape", type(images).__name__)
        raise ValueError(f"masks.{KIND}: images must be N×C×H×W with C = 1 or 3, got {shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"masks.{KIND}: images must be uint8, got {images.dtype}")
    if len(rngs) != len(images):
        raise ValueError(f"masks.{KIND}: got {len(rngs)} rngs for {len(images)} images (one each)")
