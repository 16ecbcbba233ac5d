"""Node of the inpaint pipeline: check the `inpaint:` block, resolve the checkpoint, inpaint a folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pixelheal.config import named, parse, require
from pixelheal.inference import inpaint_folder, load_inpainter, resolve_checkpoint

logger = logging.getLogger(__name__)

WHERE = "inpaint"  # the parameter block the node reads: `params:inpaint`


@dataclass(frozen=True)
class InpaintParameters:
    """The `inpaint:` block; conf/base/parameters_inpaint.yml documents every key."""

    model: str  # an architecture key (→ <models_dir>/<key>.pt) or a checkpoint path
    models_dir: str
    images_dir: str
    masks_dir: str
    output_dir: str
    device: str
    batch_size: int
    seed: int
    overwrite: bool = False  # absent means the safe choice: existing outputs are never replaced unasked

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "batch_size", f"must be at least 1, got {self.batch_size}")


def inpaint_parameters(block: Any, where: str = "inpaint") -> InpaintParameters:
    """The `inpaint:` block checked once; every error names `<where>.<key>` (e.g. `inpaint.batch_size`)."""
    return parse(InpaintParameters, block, where)


def inpaint_images(inpaint: dict[str, Any]) -> None:
    """Inpaint every image of `inpaint.images_dir` with `inpaint.model` into `inpaint.output_dir`."""
    params = inpaint_parameters(inpaint, WHERE)
    with named(WHERE):
        checkpoint = resolve_checkpoint(params.model, params.models_dir)
    inpainter = load_inpainter(checkpoint, params.device, where=f"{WHERE}.device")  # its message names the key
    logger.info("inpainting with %s (%s, trained at %dx%d)", checkpoint, inpainter.arch, *inpainter.image_size[::-1])
    with named(WHERE):
        inpaint_folder(
            inpainter,
            params.images_dir,
            params.masks_dir,
            params.output_dir,
            batch_size=params.batch_size,
            seed=params.seed,
            overwrite=params.overwrite,
        )
