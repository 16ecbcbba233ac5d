"""Atomic file writes: a reader never sees a half-written file, and a kill mid-write keeps the old one.

Every file PixelHeal persists (arrays, checkpoints, training resume states, inpainted images) is
written to a hidden temporary file beside its destination and renamed over it: a rename within one
folder is atomic, a copy is not. Written files get the permissions a plain `open()` would give them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask_permissions(path: Path) -> None:
    """Give `path` the mode a plain `open()` would: temporary files are created private (0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> None:
    """Write `path` through `write(tmp_path)` into a temporary file beside it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        _umask_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def staged_folder(folder: str | Path) -> Iterator[Path]:
    """A temporary folder beside `folder`; when the block succeeds, every file in it moves into `folder`.

    A failure (or an interrupt) inside the block leaves `folder` untouched: many files become
    visible together or not at all, each by an atomic rename. The staging folder is removed either way.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        yield staging
        for source in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = folder / source.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
