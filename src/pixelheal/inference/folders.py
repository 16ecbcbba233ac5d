"""Inpaint a folder of images with their mask files: `a/b.jpg` + `<masks>/a/b.png` → `<output>/a/b.png`.

Images are listed and decoded only through `pixelheal.data` (the readers training ingestion uses),
every pair is validated before anything is inpainted, and the outputs become visible together
(`pixelheal.storage.staged_folder`), so a failure leaves the output folder untouched.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pixelheal.data.folders import IMAGE_EXTENSIONS, list_images
from pixelheal.data.records import read_image
from pixelheal.inference.inpainter import Inpainter, array_image, image_array, inpaint_batch
from pixelheal.masks.files import read_mask
from pixelheal.storage import staged_folder

logger = logging.getLogger(__name__)

MAX_LISTED = 20  # problems listed in one error message before "... and N more"


def _raise_listed(headline: str, problems: list[str]) -> None:
    if problems:
        listed = problems[:MAX_LISTED]
        if len(problems) > MAX_LISTED:
            listed.append(f"... and {len(problems) - MAX_LISTED} more")
        raise ValueError(f"{headline}:\n  " + "\n  ".join(listed))


def _relative_images(root: Path) -> list[Path]:
    """The image files under `root`, relative to it; refused when none, or when two share one output name."""
    if not root.is_dir():
        raise ValueError(f"images_dir: {root} is not a folder")
    found = list_images(root, IMAGE_EXTENSIONS)
    if not found:
        raise ValueError(f"images_dir: {root} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    stems: dict[Path, list[str]] = {}
    for relative in found:
        stems.setdefault(relative.with_suffix(""), []).append(relative.name)
    _raise_listed(
        f"images_dir: {root} has images that would share one mask and one output name",
        [f"{stem}: {', '.join(names)}" for stem, names in stems.items() if len(names) > 1],
    )
    return found


def pair_masks(images_dir: str | Path, masks_dir: str | Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs: `a/b.jpg` ↔ `<masks_dir>/a/b.png`, or one mask file for every image."""
    root, masks = Path(images_dir), Path(masks_dir)
    relatives = _relative_images(root)
    if masks.is_file():
        return [(root / relative, masks) for relative in relatives]
    if not masks.is_dir():
        raise ValueError(f"masks_dir: {masks} is neither a folder nor a mask file")
    pairs = [(root / relative, masks / relative.with_suffix(".png")) for relative in relatives]
    missing = [str(image) for image, mask in pairs if not mask.is_file()]
    _raise_listed(
        f"masks_dir: {masks} lacks the mask (<relative path>.png, 255 = hole) of {len(missing)} image(s)", missing
    )
    return pairs


def validate_pairs(pairs: list[tuple[Path, Path]]) -> None:
    """Check every image decodes and every mask is binary and of its image's size, before anything is written."""
    problems: list[str] = []
    shapes: dict[Path, tuple[int, int] | None] = {}  # a mask file shared by every image is read (and reported) once
    for image, mask_path in pairs:
        if mask_path not in shapes:
            try:
                shapes[mask_path] = read_mask(mask_path).shape
            except ValueError as error:
                shapes[mask_path] = None
                problems.append(str(error))
        try:
            size = read_image(image).size  # a full decode: a truncated file stops here, not mid-run
        except ValueError as error:
            problems.append(str(error))
            continue
        if shapes[mask_path] is None:
            continue
        height, width = shapes[mask_path]
        if size != (width, height):
            problems.append(f"{mask_path}: mask is {width}x{height} but its image {image} is {size[0]}x{size[1]}")
    _raise_listed(f"{len(problems)} image/mask problem(s); nothing was written", problems)


def _check_output_dir(output_dir: Path, images_dir: Path, masks_dir: Path) -> None:
    """Refuse an output folder that would overwrite inputs or be read as input by the next run."""
    out = output_dir.resolve()
    if out == masks_dir.resolve() or out.is_relative_to(images_dir.resolve()):
        raise ValueError(
            f"output_dir: {output_dir} is (inside) an input folder; choose another so no input is overwritten"
        )


def inpaint_folder(
    inpainter: Inpainter,
    images_dir: str | Path,
    masks_dir: str | Path,
    output_dir: str | Path,
    batch_size: int = 16,
    seed: int = 0,
) -> list[Path]:
    """Inpaint every image under `images_dir`; write `<output_dir>/<relative path>.png`; return those paths.

    Everything is validated first and the outputs are written to a staging folder beside
    `output_dir`, then moved in, so a failure leaves `output_dir` untouched.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: must be at least 1, got {batch_size}")
    root, out = Path(images_dir), Path(output_dir)
    pairs = pair_masks(root, masks_dir)
    _check_output_dir(out, root, Path(masks_dir))
    validate_pairs(pairs)
    with staged_folder(out) as staging:
        written = _inpaint_pairs(inpainter, pairs, root, staging, batch_size, seed)
    logger.info("inpainted %d image(s) into %s", len(written), out)
    return [out / relative for relative in written]


def _inpaint_pairs(
    inpainter: Inpainter, pairs: list[tuple[Path, Path]], root: Path, staging: Path, batch_size: int, seed: int
) -> list[Path]:
    """Inpaint the pairs batch by batch into `staging`; return the written paths relative to it."""
    written: list[Path] = []
    shared: dict[Path, np.ndarray] = {}  # one entry: a single mask file for every image is read once
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        images = [image_array(inpainter.convert(read_image(image))) for image, _ in batch]
        masks = []
        for _, mask in batch:
            if mask not in shared:
                shared = {mask: read_mask(mask, warn=False)}  # validate_pairs already warned
            masks.append(shared[mask])
        # A distinct seed per batch, so sampling architectures do not repeat one noise pattern.
        outputs = inpaint_batch(inpainter, images, masks, 1, seed + start)
        for (image, _), (result,) in zip(batch, outputs):
            relative = image.relative_to(root).with_suffix(".png")
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            array_image(result).save(staging / relative)
            written.append(relative)
        logger.info("inpainted %d/%d image(s)", len(written), len(pairs))
    return written
