"""Node of the inpaint pipeline: resolve the checkpoint, then inpaint a folder with the library."""

from __future__ import annotations

import logging

from pixelheal.inference import inpaint_folder, load_inpainter, resolve_checkpoint

logger = logging.getLogger(__name__)


def inpaint_images(
    model: str,
    models_dir: str,
    images_dir: str,
    masks_dir: str,
    output_dir: str,
    device: str,
    batch_size: int,
    seed: int,
) -> None:
    """Inpaint every image of `images_dir` with `model` (architecture key or checkpoint path) into `output_dir`."""
    checkpoint = resolve_checkpoint(str(model), models_dir)
    inpainter = load_inpainter(checkpoint, device)
    logger.info("inpainting with %s (%s, trained at %dx%d)", checkpoint, inpainter.arch, *inpainter.image_size[::-1])
    inpaint_folder(inpainter, images_dir, masks_dir, output_dir, batch_size=int(batch_size), seed=int(seed))
