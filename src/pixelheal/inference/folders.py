"""Inpaint a folder of images with their mask files: `a/b.jpg` + `<masks>/a/b.png` → `<output>/a/b.png`.

Images are listed and decoded only through `pixelheal.data` (the readers training ingestion uses),
every pair is validated before anything is inpainted, and the outputs become visible together
(`pixelheal.storage.staged_folder`), so a failure leaves the output folder untouched. The output
folder must lie apart from every input folder (links followed), must be writable, and may hold a
file of the same name as an output only when `overwrite` is set: no user file is replaced unasked.
Errors about a parameter are `ConfigError`s keyed by it, so a caller can name its own block.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from pixelheal.config import ConfigError
from pixelheal.data.folders import IMAGE_EXTENSIONS, list_images
from pixelheal.data.records import read_image
from pixelheal.inference.inpainter import Inpainter, array_image, image_array, inpaint_batch
from pixelheal.masks.files import read_mask
from pixelheal.storage import staged_folder

logger = logging.getLogger(__name__)

MAX_LISTED = 20  # problems listed in one error message before "... and N more"


def _raise_listed(headline: str, problems: list[str], key: str | None = None) -> None:
    """One message: the headline, then the problems one per line; a ConfigError when about parameter `key`."""
    if problems:
        listed = problems[:MAX_LISTED]
        if len(problems) > MAX_LISTED:
            listed.append(f"... and {len(problems) - MAX_LISTED} more")
        message = f"{headline}:\n  " + "\n  ".join(listed)
        raise ConfigError(key, message) if key else ValueError(message)


def _relative_images(root: Path) -> list[Path]:
    """The image files under `root`, relative to it; refused when none, or when two share one output name."""
    if not root.is_dir():
        raise ConfigError("images_dir", f"{root} is not a folder")
    found = list_images(root, IMAGE_EXTENSIONS)
    if not found:
        raise ConfigError("images_dir", f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    stems: dict[Path, list[str]] = {}
    for relative in found:
        stems.setdefault(relative.with_suffix(""), []).append(relative.name)
    _raise_listed(
        f"{root} has images that would share one mask and one output name",
        [f"{stem}: {', '.join(names)}" for stem, names in stems.items() if len(names) > 1],
        "images_dir",
    )
    return found


def pair_masks(images_dir: str | Path, masks_dir: str | Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs: `a/b.jpg` ↔ `<masks_dir>/a/b.png`, or one mask file for every image."""
    root, masks = Path(images_dir), Path(masks_dir)
    relatives = _relative_images(root)
    if masks.is_file():
        return [(root / relative, masks) for relative in relatives]
    if not masks.is_dir():
        raise ConfigError("masks_dir", f"{masks} is neither a folder nor a mask file")
    pairs = [(root / relative, masks / relative.with_suffix(".png")) for relative in relatives]
    missing = [str(image) for image, mask in pairs if not mask.is_file()]
    _raise_listed(
        f"{masks} lacks the mask (<relative path>.png, 255 = hole) of {len(missing)} image(s)", missing, "masks_dir"
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


def _input_places(images_dir: Path, masks_dir: Path, pairs: list[tuple[Path, Path]]) -> list[tuple[str, Path, Path]]:
    """(parameter, its value, real path) of every folder or mask file the inputs are read from.

    Links are followed: a linked sub-folder of images_dir is read too. The parameters' own paths come
    first, so a message names them whenever they are the overlap.
    """
    given = {"images_dir": images_dir, "masks_dir": masks_dir}
    linked = {("images_dir", image.resolve().parent) for image, _ in pairs}
    if masks_dir.is_dir():
        linked |= {("masks_dir", mask.resolve().parent) for _, mask in pairs}
    return [(key, path, path.resolve()) for key, path in given.items()] + [
        (key, given[key], real) for key, real in sorted(linked)
    ]


def _relation(out: Path, place: Path) -> str | None:
    """How the real output folder overlaps a real input path, if it does."""
    if out == place:
        return "is"
    if out.is_relative_to(place):
        return "is inside"
    return "contains" if place.is_relative_to(out) else None


def _check_output_dir(output_dir: Path, images_dir: Path, masks_dir: Path, pairs: list[tuple[Path, Path]]) -> None:
    """Refuse an output folder that would overwrite inputs or be read as input by the next run."""
    out = output_dir.resolve()
    for key, given, real in _input_places(images_dir, masks_dir, pairs):
        relation = _relation(out, real)
        if relation is not None:
            place = f"{key} {given}" if real == given.resolve() else f"{real}, which {key} {given} reads through a link"
            raise ConfigError(
                "output_dir",
                f"{output_dir} {relation} {place}; choose a folder apart from the inputs, "
                "so that none is overwritten or read back as input",
            )


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path, output_dir: Path) -> None:
    """Create and remove a file in `folder`: permission bits alone do not tell (root, read-only mounts, ACLs)."""
    try:
        handle, name = tempfile.mkstemp(prefix=".pixelheal-probe-", dir=folder)
    except OSError as error:
        what = f"{output_dir} is" if folder == output_dir else f"{output_dir}: {folder} is"
        raise ConfigError("output_dir", f"{what} not writable ({error.strerror})") from None
    os.close(handle)
    os.unlink(name)


def _check_writable(output_dir: Path, outputs: list[Path]) -> None:
    """Every folder the outputs and their staging folder go into is a writable folder: found now, not at the end."""
    folders = {output_dir.parent} | {(output_dir / relative).parent for relative in outputs}
    for folder in sorted({_nearest_existing(folder) for folder in folders}):
        if not folder.is_dir():
            what = f"{output_dir} is" if folder == output_dir else f"{output_dir}: {folder} is"
            raise ConfigError("output_dir", f"{what} a file, not a folder")
        _probe(folder, output_dir)


def _check_existing(output_dir: Path, outputs: list[Path], overwrite: bool) -> None:
    """Refuse outputs that would replace existing files unless `overwrite`; a folder in the way is never replaced."""
    taken = [output_dir / relative for relative in outputs if os.path.lexists(output_dir / relative)]
    folders = [str(path) for path in taken if path.is_dir()]
    _raise_listed(f"{output_dir} has {len(folders)} folder(s) where outputs would be written", folders, "output_dir")
    if not overwrite:
        _raise_listed(
            f"{output_dir} already holds {len(taken)} file(s) this run would write; "
            "set overwrite: true to replace them, or choose another folder",
            [str(path) for path in taken],
            "output_dir",
        )


def inpaint_folder(
    inpainter: Inpainter,
    images_dir: str | Path,
    masks_dir: str | Path,
    output_dir: str | Path,
    batch_size: int = 16,
    seed: int = 0,
    overwrite: bool = False,
) -> list[Path]:
    """Inpaint every image under `images_dir`; write `<output_dir>/<relative path>.png`; return those paths.

    Everything is validated first (pairs, output folder, files it would replace unless `overwrite`)
    and the outputs are written to a staging folder beside `output_dir`, then moved in, so a failure
    leaves `output_dir` untouched.
    """
    if batch_size < 1:
        raise ConfigError("batch_size", f"must be at least 1, got {batch_size}")
    root, masks, out = Path(images_dir), Path(masks_dir), Path(output_dir)
    pairs = pair_masks(root, masks)
    outputs = [image.relative_to(root).with_suffix(".png") for image, _ in pairs]
    _check_output_dir(out, root, masks, pairs)
    _check_writable(out, outputs)
    _check_existing(out, outputs, overwrite)
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
