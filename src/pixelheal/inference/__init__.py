"""Inpaint your own images with a trained checkpoint: any size in, the same size out.

`inpainter` rebuilds a checkpoint's model and inpaints one picture or a batch; `folders` pairs a
folder of images with its mask files and writes the results. Mask files are parsed in
`pixelheal.masks.files`; images are read and converted only through `pixelheal.data`.
"""

from pixelheal.inference.folders import inpaint_folder, pair_masks, validate_pairs
from pixelheal.inference.inpainter import (
    Inpainter,
    inpaint_batch,
    inpaint_image,
    inpaint_samples,
    load_inpainter,
    resolve_checkpoint,
)

__all__ = [
    "Inpainter",
    "inpaint_batch",
    "inpaint_folder",
    "inpaint_image",
    "inpaint_samples",
    "load_inpainter",
    "pair_masks",
    "resolve_checkpoint",
    "validate_pairs",
]
