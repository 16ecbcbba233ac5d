"""Tests for read_image: full decode at read time (first frame), errors naming the file."""

from __future__ import annotations

import pytest
from PIL import Image

from pixelheal.data import ImageReadError, read_image
from pixelheal.data.records import read_first_frame


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


def test_read_first_frame_says_whether_more_frames_follow(tmp_path, write_image):
    frames = [Image.new("RGB", (4, 4), color) for color in [(200, 0, 0), (0, 200, 0)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    image, more = read_first_frame(tmp_path / "anim.gif")
    assert more and image.convert("RGB").getpixel((0, 0)) == (200, 0, 0)
    assert read_first_frame(write_image(tmp_path / "still.png"))[1] is False
