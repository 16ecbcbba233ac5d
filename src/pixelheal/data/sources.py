"""Image sources behind one factory: ``make_source(kind, **kwargs)``.

Every source is a sized, re-iterable collection of :class:`ImageRecord` in a deterministic
order. ``len(source)`` is cheap (files are listed, not decoded); sources that skip unreadable
files (``on_error="skip"``) list them in ``source.skipped`` after an iteration.
"""

from __future__ import annotations

import inspect
import itertools
import typing
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from pixelheal.config import coerce, require, split_kind
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
    "SOURCE_BLOCK",
    "SOURCE_KINDS",
    "TorchvisionSource",
    "check_source",
    "make_source",
    "read_image",
]


def _torchvision(kind: str) -> Callable[..., ImageSource]:
    """A builder for one torchvision-backed kind."""

    def build(root: str | Path, download: bool = False, include_test: bool = False) -> ImageSource:
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
SOURCE_BLOCK = "data_processing.source"  # where the block is read from unless the caller says otherwise


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


def check_source(block: Any, where: str = SOURCE_BLOCK) -> None:
    """Refuse an unknown kind, a parameter the kind does not take, a missing one or a wrong type.

    Nothing is listed, opened or downloaded: the values' own checks run when the source is built.
    Every error is a ValueError `"<where>.<key>: ..."`.
    """
    kind, params = split_kind(block, where, SOURCE_KINDS, "source kind")
    limit = params.pop("limit", None)
    require(
        limit is None or (isinstance(limit, int) and not isinstance(limit, bool)),
        f"{where}.limit",
        f"expected an integer or null, got {limit!r}",
    )
    signature = inspect.signature(_BUILDERS[kind])
    hints = _hints(kind)
    valid = [*signature.parameters, "limit"]
    for key, value in params.items():
        require(
            key in signature.parameters,
            f"{where}.{key}",
            f"source kind {kind!r} has no parameter {key!r}; valid: {valid}",
        )
        coerce(hints.get(key, Any), value, f"{where}.{key}")
    for name, parameter in signature.parameters.items():
        require(
            parameter.default is not inspect.Parameter.empty or name in params,
            f"{where}.{name}",
            f"required parameter of source kind {kind!r} is missing",
        )


@cache
def _hints(kind: str) -> dict[str, Any]:
    """The type hints of a kind's builder (its parameters' declared types)."""
    builder = _BUILDERS[kind]
    return typing.get_type_hints(builder.__init__ if isinstance(builder, type) else builder)


def make_source(kind: str, limit: int | None = None, *, where: str = SOURCE_BLOCK, **kwargs: Any) -> ImageSource:
    """Build the image source ``kind`` from its keyword arguments; ``limit`` keeps its first images."""
    check_source({"kind": kind, "limit": limit, **kwargs}, where)
    source = _BUILDERS[kind](**kwargs)
    return source if limit is None else LimitedSource(source, limit)
