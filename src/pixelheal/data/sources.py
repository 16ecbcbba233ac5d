"""Image sources behind one factory: ``make_source(kind, **kwargs)``.

Every source is a sized, re-iterable collection of :class:`ImageRecord` in a deterministic
order. ``len(source)`` is cheap (files are listed, not decoded); sources that skip unreadable
files (``on_error="skip"``) list them in ``source.skipped`` after an iteration.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterator
from typing import Any

from pixelheal.data.folders import ImageFolderSource, PairedFoldersSource
from pixelheal.data.records import ImageReadError, ImageRecord, ImageSource, read_image
from pixelheal.data.sample import SampleSource
from pixelheal.data.torchvision_sources import TorchvisionSource

__all__ = [
    "ImageFolderSource",
    "ImageReadError",
    "ImageRecord",
    "ImageSource",
    "LimitedSource",
    "PairedFoldersSource",
    "SampleSource",
    "SOURCE_KINDS",
    "TorchvisionSource",
    "make_source",
    "read_image",
]


def _torchvision(kind: str) -> Callable[..., ImageSource]:
    """A builder for one torchvision-backed kind."""

    def build(root: str, download: bool = False, include_test: bool = False) -> ImageSource:
        return TorchvisionSource(kind, root, download=download, include_test=include_test)

    return build


_BUILDERS: dict[str, Callable[..., ImageSource]] = {
    "sample": SampleSource,
    "image_folder": ImageFolderSource,
    "paired_folders": PairedFoldersSource,
    "cifar10": _torchvision("cifar10"),
    "mnist": _torchvision("mnist"),
    "celeba": _torchvision("celeba"),
}
SOURCE_KINDS = tuple(_BUILDERS)


class LimitedSource:
    """The first ``limit`` records of another source (e.g. a 1,024-image subset of CelebA)."""

    def __init__(self, source: ImageSource, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be a positive number of images, got {limit}")
        self.source, self.limit = source, limit

    def __len__(self) -> int:
        return min(len(self.source), self.limit)

    def __iter__(self) -> Iterator[ImageRecord]:
        return itertools.islice(iter(self.source), self.limit)

    @property
    def skipped(self) -> list[str]:
        return getattr(self.source, "skipped", [])


def make_source(kind: str, limit: int | None = None, **kwargs: Any) -> ImageSource:
    """Build the image source ``kind`` from its keyword arguments; ``limit`` keeps its first images."""
    if limit is not None:
        return LimitedSource(make_source(kind, **kwargs), limit)
    if kind not in _BUILDERS:
        raise ValueError(f"unknown source kind {kind!r}; valid kinds: {', '.join(SOURCE_KINDS)}")
    builder = _BUILDERS[kind]
    try:
        # Bind first so a misspelt or missing parameter names the kind it was meant for.
        inspect.signature(builder).bind(**kwargs)
    except TypeError as exc:
        raise ValueError(f"invalid parameters for source kind {kind!r}: {exc}") from exc
    return builder(**kwargs)
