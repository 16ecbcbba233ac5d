"""Folder sources: "image_folder" (optionally class sub-folders) and "paired_folders"."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from pixelheal.data.records import ImageRecord, check_on_error, read_or_skip

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
ON_UNMATCHED_CHOICES = ("raise", "skip")
_MAX_LISTED = 20  # unmatched files named in one error message; the rest are counted


def _check_extensions(extensions: Sequence[str]) -> tuple[str, ...]:
    """Normalise extensions to lower case with a leading dot."""
    if isinstance(extensions, str):
        extensions = [extensions]
    normalised = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
    if not normalised:
        raise ValueError("extensions must name at least one file extension, got none")
    return normalised


def _check_folder(folder: str | Path, parameter: str) -> Path:
    """Return ``folder`` as a Path, raising ValueError naming it when it is not a directory."""
    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"{parameter}: image folder {path} does not exist or is not a directory")
    return path


def list_images(root: Path, extensions: Sequence[str]) -> list[Path]:
    """Image files under ``root`` (recursive), relative to it, sorted by posix path.

    Hidden files and folders (".name") are ignored: they are OS debris such as
    macOS "._x.jpg" resource forks, which carry an image extension but no image.
    """
    found = [
        p.relative_to(root)
        for p in root.rglob("*")
        if p.suffix.lower() in extensions and p.is_file()
    ]
    visible = [p for p in found if not any(part.startswith(".") for part in p.parts)]
    return sorted(visible, key=lambda p: p.as_posix())


def label_of(relative: Path) -> str:
    """Class label of a file: its relative folder (posix), or "" at the top level."""
    parent = relative.parent.as_posix()
    return "" if parent == "." else parent


class ImageFolderSource:
    """Images under ``path`` (recursive), plus an optional ``test_path`` read as subset "test"."""

    def __init__(
        self,
        path: str | Path,
        test_path: str | Path | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        on_error: str = "raise",
    ) -> None:
        """List the files (without decoding them)."""
        self.on_error = check_on_error(on_error)
        exts = _check_extensions(extensions)
        roots = [("path", path, "train")]
        if test_path is not None:
            roots.append(("test_path", test_path, "test"))
        self.entries: list[tuple[Path, Path, str]] = []  # (root, relative file, subset)
        for parameter, folder, subset in roots:
            root = _check_folder(folder, parameter)
            files = list_images(root, exts)
            if not files:
                raise ValueError(
                    f"{parameter}: image folder {root} contains no images ({', '.join(exts)})"
                )
            self.entries.extend((root, rel, subset) for rel in files)
        self.skipped: list[str] = []

    def __len__(self) -> int:
        """Number of listed files."""
        return len(self.entries)

    def __iter__(self) -> Iterator[ImageRecord]:
        """Yield the readable images in sorted order (train first, then test)."""
        self.skipped = []
        for root, rel, subset in self.entries:
            image = read_or_skip(root / rel, self.on_error, self.skipped)
            if image is not None:
                yield ImageRecord(
                    image=image, source=rel.as_posix(), label=label_of(rel), subset=subset
                )


def _by_stem(root: Path, files: list[Path]) -> dict[str, Path]:
    """Map relative path without extension -> file, refusing two files with the same stem."""
    keyed: dict[str, Path] = {}
    for rel in files:
        key = rel.with_suffix("").as_posix()
        if key in keyed:
            raise ValueError(
                f"ambiguous pair: {root / keyed[key]} and {root / rel} have the same name "
                "without extension; keep one"
            )
        keyed[key] = rel
    return keyed


def _describe_unmatched(unmatched: list[str]) -> str:
    """At most _MAX_LISTED lines naming unmatched files, then a count of the rest."""
    lines = [f"  {name}" for name in unmatched[:_MAX_LISTED]]
    if len(unmatched) > _MAX_LISTED:
        lines.append(f"  ... and {len(unmatched) - _MAX_LISTED} more")
    return "\n".join(lines)


class PairedFoldersSource:
    """Occluded/original image pairs matched by relative path without extension."""

    def __init__(
        self,
        path: str | Path,
        occluded: str = "occluded",
        original: str = "original",
        on_unmatched: str = "raise",
        on_error: str = "raise",
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ) -> None:
        """Match the two folders' files (without decoding them)."""
        if on_unmatched not in ON_UNMATCHED_CHOICES:
            raise ValueError(
                f"on_unmatched must be one of {ON_UNMATCHED_CHOICES}, got {on_unmatched!r}"
            )
        self.on_error = check_on_error(on_error)
        exts = _check_extensions(extensions)
        root = _check_folder(path, "path")
        # Names relative to ``path``: what error messages and record sources show.
        self.occluded_name, self.original_name = Path(occluded), Path(original)
        self.occluded_root = _check_folder(root / occluded, "occluded")
        self.original_root = _check_folder(root / original, "original")
        occ = _by_stem(self.occluded_root, list_images(self.occluded_root, exts))
        orig = _by_stem(self.original_root, list_images(self.original_root, exts))
        self.pairs = [(orig[key], occ[key]) for key in sorted(orig.keys() & occ.keys())]
        self._report_unmatched(root, occ, orig, on_unmatched)
        if not self.pairs:
            raise ValueError(f"path: no occluded/original image pairs found under {root}")
        self.skipped: list[str] = []

    def _report_unmatched(
        self, root: Path, occ: dict[str, Path], orig: dict[str, Path], on_unmatched: str
    ) -> None:
        """Raise one error (or log one warning) listing every file without a counterpart."""
        no_original = [(self.occluded_name / occ[k]).as_posix() for k in occ.keys() - orig.keys()]
        no_occluded = [(self.original_name / orig[k]).as_posix() for k in orig.keys() - occ.keys()]
        unmatched = sorted(
            [f"{name} (no original)" for name in no_original]
            + [f"{name} (no occluded)" for name in no_occluded]
        )
        if not unmatched:
            return
        message = (
            f"{len(unmatched)} file(s) under {root} have no counterpart "
            f"(pairs match by relative path without extension):\n{_describe_unmatched(unmatched)}"
        )
        if on_unmatched == "raise":
            raise ValueError(f"{message}\nSet on_unmatched: skip to ignore them.")
        logger.warning("Skipping unmatched files. %s", message)

    def __len__(self) -> int:
        """Number of matched pairs."""
        return len(self.pairs)

    def __iter__(self) -> Iterator[ImageRecord]:
        """Yield each readable pair: image = original, paired = occluded."""
        self.skipped = []
        for orig_rel, occ_rel in self.pairs:
            orig_path, occ_path = self.original_root / orig_rel, self.occluded_root / occ_rel
            original = read_or_skip(orig_path, self.on_error, self.skipped)
            if original is None:
                continue
            occluded = read_or_skip(occ_path, self.on_error, self.skipped)
            if occluded is None:
                continue
            if original.size != occluded.size:
                # A size mismatch means the files are not a pair; resizing would hide that.
                raise ValueError(
                    f"mismatched pair: {orig_path} is {original.size[0]}x{original.size[1]} but "
                    f"{occ_path} is {occluded.size[0]}x{occluded.size[1]} (width x height)"
                )
            yield ImageRecord(
                image=original,
                source=(self.original_name / orig_rel).as_posix(),
                label=label_of(orig_rel),
                subset="train",
                paired=occluded,
            )
