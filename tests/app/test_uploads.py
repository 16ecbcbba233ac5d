"""Upload checks of the web app: refusals with a reason, limits as options, temp files cleaned up."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from pixelheal.app.__main__ import parse_args
from pixelheal.app.uploads import UploadError, UploadLimits, check_upload, refusals

SMALL = UploadLimits(max_mb=1, max_megapixels=0.01)  # 1 MB, 10,000 pixels


def png_bytes(size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels but holds none: a decompression bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def upload(tmp_path):
    """Write ``data`` as an uploaded file; its bytes are checked again after the test (nothing changed)."""
    written: list[tuple[Path, bytes]] = []

    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        written.append((path, data))
        return path

    yield write
    assert all(path.read_bytes() == data for path, data in written)


def test_a_good_upload_passes_as_a_file_and_as_bytes(upload):
    check_upload(upload("photo.png", png_bytes()), "image", SMALL)
    check_upload(png_bytes(), "image", SMALL)


def test_too_many_bytes_names_the_file_and_the_option(upload):
    path = upload("big.png", png_bytes() + b"\0" * 1_200_000)  # trailing bytes: still a valid PNG
    with pytest.raises(
        UploadError, match=r"^mask: big\.png is 1\.2 MB, over the 1 MB upload limit \(--max-upload-mb\)$"
    ):
        check_upload(path, "mask", SMALL)


def test_a_non_image_is_refused_with_the_reason(upload):
    with pytest.raises(UploadError, match=r"^mask: notes\.png is not an image file this app can read"):
        check_upload(upload("notes.png", b"just some text"), "mask", SMALL)


def test_too_many_pixels_is_refused_from_the_header(upload):
    with pytest.raises(
        UploadError,
        match=r"^image: wide\.png is 200x60 pixels, over the 0\.01-megapixel limit "
        r"\(--max-megapixels\)$",
    ):
        check_upload(upload("wide.png", png_bytes((200, 60))), "image", SMALL)
    with pytest.raises(UploadError, match=r"^image: claims\.png is 10000x5000 pixels, over the 40-megapixel"):
        check_upload(png_header_only(10_000, 5_000), "image", UploadLimits(), "claims.png")


def test_a_decompression_bomb_beyond_pils_own_limit_is_refused(upload):
    generous = UploadLimits(max_megapixels=1e6)  # above PIL's own refusal (~179 megapixels)
    with pytest.raises(UploadError, match=r"^image: bomb\.png has too many pixels to decode safely"):
        check_upload(upload("bomb.png", png_header_only(100_000, 50_000)), "image", generous)


def test_decoding_failures_become_one_refusal(upload):
    truncated = upload("cut.png", png_bytes((64, 64))[:60])
    check_upload(truncated, "mask", SMALL)  # the header alone is fine
    with (
        pytest.raises(UploadError, match=r"^mask: cut\.png cannot be decoded as an image"),
        refusals("mask", "cut.png"),
        Image.open(truncated) as image,
    ):
        image.load()
    with pytest.raises(UploadError, match=r"^mask: gone\.png is no longer on the server"):
        check_upload(truncated.parent / "gone.png", "mask", SMALL)


@pytest.mark.parametrize(
    "kwargs, option", [({"max_mb": 0}, "--max-upload-mb"), ({"max_megapixels": float("inf")}, "--max-megapixels")]
)
def test_limits_must_be_positive(kwargs, option):
    with pytest.raises(ValueError, match=f"^{option}: must be a positive finite number"):
        UploadLimits(**kwargs)


def test_limits_and_cleanup_are_command_line_options(capsys):
    args = parse_args([])
    assert (args.max_upload_mb, args.max_megapixels, args.keep_files_minutes) == (20, 40, 60)
    args = parse_args(["--max-upload-mb", "5", "--max-megapixels", "2.5", "--keep-files-minutes", "10"])
    assert UploadLimits(args.max_upload_mb, args.max_megapixels).max_bytes == 5_000_000
    with pytest.raises(SystemExit):
        parse_args(["--max-megapixels", "-1"])
    assert "argument --max-megapixels: must be a positive finite number, got -1" in capsys.readouterr().err


# --- the page's components (imports Gradio) ------------------------------------------------


@pytest.fixture(scope="module")
def ui():
    return pytest.importorskip("pixelheal.app.ui")


@pytest.fixture(scope="module")
def page(ui, tmp_path_factory):
    service = SimpleNamespace(choices=lambda: [], models_dir=tmp_path_factory.mktemp("models"))
    return ui.build_app(service, SMALL, keep_minutes=30)


def _component(page, elem_id: str):
    return next(block for block in page.blocks.values() if getattr(block, "elem_id", None) == elem_id)


def test_page_keeps_its_components_and_cleans_its_temp_files(page):
    config = page.get_config_file()
    types = {c["props"].get("elem_id"): c["type"] for c in config["components"]}
    assert (types["image"], types["mask"]) == ("imageeditor", "image")
    assert page.delete_cache == (300, 1800)  # every 5 minutes, files older than 30
    assert _component(page, "image").limits == _component(page, "mask").limits == SMALL


def test_mask_upload_refusal_reaches_the_page_as_one_message(ui, page, upload):
    from gradio import Error
    from gradio.data_classes import ImageData

    mask = _component(page, "mask")
    value = mask.preprocess(ImageData(path=str(upload("ok.png", png_bytes())), orig_name="ok.png"))
    assert value.size == (8, 6)
    with pytest.raises(Error) as excinfo:
        mask.preprocess(ImageData(path=str(upload("x.png", b"<html>")), orig_name="holiday.png"))
    assert excinfo.value.message.startswith("mask: holiday.png is not an image file")


def test_editor_refusal_reaches_the_page_as_one_message(ui, page):
    from gradio import Error
    from gradio.components.image_editor import EditorData, EditorDataBlobs

    editor = _component(page, "image")
    # The page's canvas sends its pictures as blobs first, then a value naming them by id.
    editor.blob_storage["ok"] = EditorDataBlobs(background=png_bytes(), layers=[], composite=None)
    assert editor.preprocess(EditorData(id="ok"))["background"].size == (8, 6)
    editor.blob_storage["big"] = EditorDataBlobs(background=png_bytes((200, 60)), layers=[], composite=None)
    with pytest.raises(Error) as excinfo:
        editor.preprocess(EditorData(id="big"))
    assert excinfo.value.message.startswith("image: the uploaded image is 200x60 pixels")
