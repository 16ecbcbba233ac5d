"""Folder sources: "image_folder" (optionally class sub-folders) and "paired_folders"."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from pixelheal.data.records import ImageRecord, ReadLog, check_on_error

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
ON_UNMATCHED_CHOICES = ("raise", "skip")
_MAX_LISTED = 20  # files named in one message; the rest are counted


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


def _is_hidden(relative: Path) -> bool:
    """Hidden files and folders (".name") are OS debris such as macOS "._x.jpg" resource forks."""
    return any(part.startswith(".") for part in relative.parts)


def _listed(lines: list[str]) -> str:
    """At most _MAX_LISTED indented lines, then a count of the rest."""
    shown = [f"  {line}" for line in lines[:_MAX_LISTED]]
    if len(lines) > _MAX_LISTED:
        shown.append(f"  ... and {len(lines) - _MAX_LISTED} more")
    return "\n".join(shown)


class _Walk:
    """One listing of a folder that follows links to folders and files, each real file listed once.

    A link whose target is also reached without links (a folder or image inside the root) is left
    out in favour of that direct path; links leaving the root are followed, each target at most once,
    which also ends any link loop.
    """

    def __init__(self, root: Path, extensions: Sequence[str]) -> None:
        self.root, self.extensions = root, tuple(e.lower() for e in extensions)
        self.root_real = Path(os.path.realpath(root))
        self.files: list[Path] = []
        self.other: Counter[str] = Counter()  # extension -> files left out for it
        self.links: list[str] = []  # links left out, each with why
        self.outside: set[str] = set()  # real paths reached through links, outside the direct tree
        self.direct: dict[str, bool] = {str(root): True}  # folder -> reached without any link

    def run(self) -> None:
        """Walk the tree top-down in sorted order, pruning hidden, duplicate and looping folders."""
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True, onerror=self._unlistable):
            here = Path(dirpath)
            dirnames[:] = [name for name in sorted(dirnames) if self._enter(here, name)]
            for name in sorted(filenames):
                self._add_file(here, name)

    def _unlistable(self, error: OSError) -> None:
        """os.walk's error hook: a folder it cannot open is said, not skipped silently."""
        logger.warning("Cannot list folder %s (%s); its files are left out", error.filename, error.strerror)

    def _enter(self, here: Path, name: str) -> bool:
        """Whether to walk the sub-folder ``name`` of ``here``."""
        if name.startswith("."):
            return False
        entry = here / name
        rel = entry.relative_to(self.root)
        direct = self.direct[str(here)] and not entry.is_symlink()
        if not direct and self._second_path(entry, rel):
            return False
        self.direct[str(entry)] = direct
        return True

    def _add_file(self, here: Path, name: str) -> None:
        """List the file ``name`` of ``here``, or count or note why it is left out."""
        if name.startswith("."):
            return
        entry = here / name
        rel = entry.relative_to(self.root)
        if entry.suffix.lower() not in self.extensions:
            self.other[entry.suffix.lower() or "(no extension)"] += 1
            return
        if not entry.is_file():  # os.walk lists a broken link as a file
            self.links.append(f"{rel.as_posix()} (a broken link)")
            return
        direct = self.direct[str(here)] and not entry.is_symlink()
        if direct or not self._second_path(entry, rel):
            self.files.append(rel)

    def _second_path(self, entry: Path, rel: Path) -> bool:
        """Whether ``entry``, reached through a link, leads to something listed elsewhere (then noted)."""
        real = Path(os.path.realpath(entry))
        try:
            target: Path | None = real.relative_to(self.root_real)
        except ValueError:
            target = None
        # Inside the root, visible and (for a file) of a listed extension: the walk lists it directly.
        listed = entry.is_dir() or real.suffix.lower() in self.extensions
        if target is not None and not _is_hidden(target) and listed:
            loop = target in (rel, *rel.parents)
            why = "a link back to a folder above it" if loop else f"a link to {target.as_posix()}, listed there"
            self.links.append(f"{rel.as_posix()} ({why})")
            return True
        if str(real) in self.outside:
            self.links.append(f"{rel.as_posix()} (a second path to {real}, or a link loop)")
            return True
        self.outside.add(str(real))
        return False

    def report(self) -> None:
        """One warning per kind of file left out: by extension (with counts), and links."""
        if self.other:
            counts = ", ".join(f"{ext}: {n}" for ext, n in sorted(self.other.items()))
            logger.warning(
                "Left out %d file(s) under %s whose extension is not one of %s (%s)",
                sum(self.other.values()),
                self.root,
                ", ".join(self.extensions),
                counts,
            )
        if self.links:
            logger.warning("Left out %d link(s) under %s:\n%s", len(self.links), self.root, _listed(self.links))


def list_images(root: Path, extensions: Sequence[str]) -> list[Path]:
    """Image files under ``root`` (recursive, following links), relative to it, sorted by posix path.

    Hidden files and folders are ignored; files left out for their extension, and links that would
    list a file twice or loop, are each reported in one warning.
    """
    walk = _Walk(Path(root), extensions)
    walk.run()
    walk.report()
    return sorted(walk.files, key=lambda p: p.as_posix())


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
                raise ValueError(f"{parameter}: image folder {root} contains no images ({', '.join(exts)})")
            self.entries.extend((root, rel, subset) for rel in files)
        self.skipped: list[str] = []

    def __len__(self) -> int:
        """Number of listed files."""
        return len(self.entries)

    def __iter__(self) -> Iterator[ImageRecord]:
        """Yield the readable images in sorted order (train first, then test)."""
        log = ReadLog(self.on_error)
        self.skipped = log.skipped
        try:
            for root, rel, subset in self.entries:
                image = log.read(root / rel)
                if image is not None:
                    yield ImageRecord(image=image, source=rel.as_posix(), label=label_of(rel), subset=subset)
        finally:  # also when the consumer stops early (a limit)
            log.finish()


def _by_stem(root: Path, files: list[Path]) -> dict[str, Path]:
    """Map relative path without extension -> file, refusing two files with the same stem."""
    keyed: dict[str, Path] = {}
    for rel in files:
        key = rel.with_suffix("").as_posix()
        if key in keyed:
            raise ValueError(
                f"ambiguous pair: {root / keyed[key]} and {root / rel} have the same name without extension; keep one"
            )
        keyed[key] = rel
    return keyed


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
            raise ValueError(f"on_unmatched must be one of {ON_UNMATCHED_CHOICES}, got {on_unmatched!r}")
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

    def _report_unmatched(self, root: Path, occ: dict[str, Path], orig: dict[str, Path], on_unmatched: str) -> None:
        """Raise one error (or log one warning) listing every file without a counterpart."""
        no_original = [(self.occluded_name / occ[k]).as_posix() for k in occ.keys() - orig.keys()]
        no_occluded = [(self.original_name / orig[k]).as_posix() for k in orig.keys() - occ.keys()]
        unmatched = sorted(
            [f"{name} (no original)" for name in no_original] + [f"{name} (no occluded)" for name in no_occluded]
        )
        if not unmatched:
            return
        message = (
            f"{len(unmatched)} file(s) under {root} have no counterpart "
            f"(pairs match by relative path without extension):\n{_listed(unmatched)}"
        )
        if on_unmatched == "raise":
            raise ValueError(f"{message}\nSet on_unmatched: skip to ignore them.")
        logger.warning("Skipping unmatched files. %s", message)

    def __len__(self) -> int:
        """Number of matched pairs."""
        return len(self.pairs)

    def __iter__(self) -> Iterator[ImageRecord]:
        """Yield each readable pair: image = original, paired = occluded."""
        log = ReadLog(self.on_error)
        self.skipped = log.skipped
        try:
            for orig_rel, occ_rel in self.pairs:
                record = self._read_pair(log, orig_rel, occ_rel)
                if record is not None:
                    yield record
        finally:  # also when the consumer stops early (a limit)
            log.finish()

    def _read_pair(self, log: ReadLog, orig_rel: Path, occ_rel: Path) -> ImageRecord | None:
        """One pair's record, or None when either file is skipped as unreadable."""
        orig_path, occ_path = self.original_root / orig_rel, self.occluded_root / occ_rel
        original = log.read(orig_path)
        if original is None:
            return None
        occluded = log.read(occ_path)
        if occluded is None:
            return None
        if original.size != occluded.size:
            # A size mismatch means the files are not a pair; resizing would hide that.
            raise ValueError(
                f"mismatched pair: {orig_path} is {original.size[0]}x{original.size[1]} but "
                f"{occ_path} is {occluded.size[0]}x{occluded.size[1]} (width x height)"
            )
        return ImageRecord(
            image=original,
            source=(self.original_name / orig_rel).as_posix(),
            label=label_of(orig_rel),
            subset="train",
            paired=occluded,
        )
