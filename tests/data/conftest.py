"""Fixtures for the data tests: tiny image files written into tmp_path."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def write_image() -> Callable[..., Path]:
    """Write a solid RGB image at ``path`` (format from the extension), creating folders."""

    def write(path: Path, size=(8, 6), color=(10, 20, 30)) -> Path:
        # size is PIL's (width, height)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, color).save(path)
        return path

    return write


@pytest.fixture
def truncated_jpeg(tmp_path: Path) -> Path:
    """A JPEG cut in half: the header parses, the full decode fails."""
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG")
    path = tmp_path / "broken" / "truncated.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


@pytest.fixture
def junk_png(tmp_path: Path) -> Path:
    """Random bytes behind an image extension."""
    path = tmp_path / "broken" / "junk.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes())
    return path


@pytest.fixture
def class_tree(tmp_path, write_image):
    """A folder with top-level images, class folders, a nested class, noise files."""
    root = tmp_path / "images"
    write_image(root / "top.png")
    write_image(root / "cat" / "b.jpg")
    write_image(root / "cat" / "a.PNG")
    write_image(root / "dog" / "small" / "c.bmp")
    write_image(root / ".hidden" / "d.png")
    (root / "notes.txt").write_text("not an image")
    return root


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root`` without following links: file bytes, or a link's target."""
    entries: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            entries[path.relative_to(root).as_posix()] = f"-> {path.readlink()}"
        elif path.is_file():
            entries[path.relative_to(root).as_posix()] = path.read_bytes()
    return entries


@pytest.fixture
def unchanged() -> Callable[[Path], Callable[[], None]]:
    """``check = unchanged(root)`` before a step, ``check()`` after it: asserts nothing under root changed."""

    def watch(root: Path) -> Callable[[], None]:
        before = snapshot(root)

        def check() -> None:
            assert snapshot(root) == before

        return check

    return watch
