"""Listing image folders (links followed once, loops ended, skipped files counted) and multi-frame files."""

from __future__ import annotations

import logging

from PIL import Image

from pixelheal.data import make_source


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_linked_class_folder_is_listed_with_its_label(tmp_path, write_image, unchanged):
    root = tmp_path / "images"
    write_image(root / "cat" / "a.png")
    write_image(tmp_path / "elsewhere" / "dogs" / "b.png")
    (root / "dog").symlink_to(tmp_path / "elsewhere" / "dogs", target_is_directory=True)
    check = unchanged(tmp_path)
    records = list(make_source("image_folder", path=root))
    assert [(r.source, r.label) for r in records] == [("cat/a.png", "cat"), ("dog/b.png", "dog")]
    check()


def test_link_loops_end_and_each_file_is_listed_once(tmp_path, write_image, caplog, unchanged):
    root, outside = tmp_path / "images", tmp_path / "outside"
    write_image(root / "cat" / "a.png")
    write_image(outside / "deep" / "b.png")
    (root / "cat" / "again").symlink_to(root, target_is_directory=True)  # loop inside the root
    (root / "kitten").symlink_to(root / "cat", target_is_directory=True)  # second path to cat/
    (root / "cat" / "link.png").symlink_to(root / "cat" / "a.png")  # second path to a file
    (root / "out").symlink_to(outside, target_is_directory=True)
    (outside / "up").symlink_to(outside, target_is_directory=True)  # loop outside the root
    (root / "out2").symlink_to(outside / "deep", target_is_directory=True)  # a second path to out/deep
    check = unchanged(tmp_path)
    with caplog.at_level(logging.WARNING, logger="pixelheal.data"):
        source = make_source("image_folder", path=root)
    # Links at one level are weighed before the walk goes deeper: out2 is met before out/deep.
    assert [rel.as_posix() for _, rel, _ in source.entries] == ["cat/a.png", "out2/b.png"]
    (message,) = _warnings(caplog)
    assert message.startswith("Left out 5 link(s) under")
    assert "cat/again (a link back to a folder above it)" in message
    assert "kitten (a link to cat, listed there)" in message
    assert "cat/link.png (a link to cat/a.png, listed there)" in message
    assert "out/deep (a second path to" in message and "out/up (a second path to" in message
    check()


def test_broken_link_is_reported(tmp_path, write_image, caplog):
    root = tmp_path / "images"
    write_image(root / "a.png")
    (root / "gone.png").symlink_to(tmp_path / "nowhere.png")
    with caplog.at_level(logging.WARNING, logger="pixelheal.data"):
        assert len(make_source("image_folder", path=root)) == 1
    assert any("gone.png (a broken link)" in m for m in _warnings(caplog))


def test_files_left_out_for_their_extension_are_counted_in_one_line(class_tree, write_image, caplog, unchanged):
    write_image(class_tree / "cat" / "anim.gif")
    write_image(class_tree / "dog" / "still.GIF")
    (class_tree / "LICENSE").write_text("x")
    check = unchanged(class_tree)
    with caplog.at_level(logging.WARNING, logger="pixelheal.data"):
        source = make_source("image_folder", path=class_tree)
    assert len(source) == 4
    (message,) = _warnings(caplog)
    assert "Left out 4 file(s)" in message
    assert "(no extension): 1, .gif: 2, .txt: 1" in message
    check()


def test_nothing_is_reported_for_a_plain_folder_of_images(tmp_path, write_image, caplog):
    write_image(tmp_path / "a" / "x.png")
    write_image(tmp_path / ".hidden.png")  # OS debris: ignored without a word
    with caplog.at_level(logging.WARNING, logger="pixelheal.data"):
        list(make_source("image_folder", path=tmp_path))
    assert _warnings(caplog) == []


def _multi_page_tiff(path, colors) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [Image.new("RGB", (4, 4), color) for color in colors]
    frames[0].save(path, save_all=True, append_images=frames[1:])


def test_multi_frame_files_use_the_first_frame_with_one_warning(tmp_path, write_image, caplog, unchanged):
    _multi_page_tiff(tmp_path / "a.tif", [(255, 0, 0), (0, 255, 0)])
    _multi_page_tiff(tmp_path / "b.tif", [(0, 0, 255), (0, 0, 0), (9, 9, 9)])
    write_image(tmp_path / "c.png")
    check = unchanged(tmp_path)
    with caplog.at_level(logging.WARNING, logger="pixelheal.data"):
        records = list(make_source("image_folder", path=tmp_path))
    assert [r.image.getpixel((0, 0)) for r in records[:2]] == [(255, 0, 0), (0, 0, 255)]
    (message,) = _warnings(caplog)
    assert "first frame of 2 multi-frame file(s)" in message and "a.tif" in message
    check()


def test_paired_multi_frame_warns_once(tmp_path, write_image, caplog):
    _multi_page_tiff(tmp_path / "original" / "x.tif", [(1, 2, 3), (4, 5, 6)])
    write_image(tmp_path / "occluded" / "x.png", size=(4, 4))
    with caplog.at_level(logging.WARNING, logger="pixelheal.data"):
        (record,) = list(make_source("paired_folders", path=tmp_path))
    assert record.image.getpixel((0, 0)) == (1, 2, 3)
    assert len([m for m in _warnings(caplog) if "multi-frame" in m]) == 1
