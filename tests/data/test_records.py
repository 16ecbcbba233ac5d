"""Tests for read_image: full decode at read time, errors naming the file."""

from __future__ import annotations

import pytest
from PIL import Image

from pixelheal.data import ImageReadError, read_image


def test_read_image_decodes_fully(tmp_path, write_image):
    path = write_image(tmp_path / "ok.png", size=(5, 3))
    img = read_image(path)
    assert isinstance(img, Image.Image) and img.size == (5, 3)
    assert img.getpixel((0, 0)) == (10, 20, 30)


@pytest.mark.parametrize("fixture", ["junk_png", "truncated_jpeg"])
def test_unreadable_files_name_themselves(fixture, request):
    path = request.getfixturevalue(fixture)
    with pytest.raises(ImageReadError, match=path.name) as excinfo:
        read_image(path)
    assert str(path) in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


def test_missing_file_is_a_read_error(tmp_path):
    with pytest.raises(ImageReadError, match="gone.png"):
        read_image(tmp_path / "gone.png")
