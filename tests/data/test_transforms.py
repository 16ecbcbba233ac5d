"""Tests for prepare_image: mode conversions, centre crop, resize, binarize, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pixelheal.data import Preprocessing, prepare, prepare_image, preprocessing_config

SIXTEEN_BIT = np.array([[0, 65535, 32768, 13107]], dtype=np.uint16)  # 1×4
EXPECTED_8BIT = [0, 255, 128, 51]  # proportional: 32768/65535*255 = 127.5 -> 128, 13107 -> 51


def test_rgb_output_layout_and_dtype():
    img = Image.new("RGB", (5, 4), (1, 2, 3))
    out = prepare_image(img, (4, 5))
    assert out.dtype == np.uint8 and out.shape == (3, 4, 5)  # C×H×W, no resize needed
    assert out[:, 0, 0].tolist() == [1, 2, 3]


def test_non_square_resize_target():
    out = prepare_image(Image.new("RGB", (10, 10)), (8, 16))
    assert out.shape == (3, 8, 16)


def test_int_image_size_is_square():
    assert prepare_image(Image.new("RGB", (30, 20)), 12).shape == (3, 12, 12)


def test_grayscale_to_rgb_and_l():
    img = Image.new("L", (4, 4), 77)
    rgb = prepare_image(img, 4)
    assert rgb.shape == (3, 4, 4) and np.all(rgb == 77)
    gray = prepare_image(img, 4, color_mode="L")
    assert gray.shape == (1, 4, 4) and np.all(gray == 77)


def test_rgb_to_l_uses_luma():
    out = prepare_image(Image.new("RGB", (2, 2), (255, 0, 0)), 2, color_mode="L")
    assert out.shape == (1, 2, 2) and np.all(out == 76)  # 0.299 * 255


def test_bilevel_mode_1():
    img = Image.new("1", (3, 3), 1)
    assert np.all(prepare_image(img, 3, color_mode="L") == 255)


def test_rgba_composited_on_white():
    arr = np.zeros((1, 3, 4), dtype=np.uint8)
    arr[0, 0] = (10, 20, 30, 255)  # opaque: unchanged
    arr[0, 1] = (0, 0, 0, 0)  # transparent black -> white
    arr[0, 2] = (0, 0, 0, 128)  # half black over white -> about 127
    out = prepare_image(Image.fromarray(arr), (1, 3))
    assert out[:, 0, 0].tolist() == [10, 20, 30]
    assert out[:, 0, 1].tolist() == [255, 255, 255]
    assert out[:, 0, 2].tolist() == [127, 127, 127]


def test_la_composited_on_white():
    img = Image.fromarray(np.array([[[0, 0], [50, 255]]], dtype=np.uint8), mode="LA")
    out = prepare_image(img, (1, 2), color_mode="L")
    assert out[0, 0].tolist() == [255, 50]


def test_palette_with_transparency():
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 red, 1 blue
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    img.info["transparency"] = 0  # red index is transparent
    out = prepare_image(img, (1, 2))
    assert out[:, 0, 0].tolist() == [255, 255, 255]
    assert out[:, 0, 1].tolist() == [0, 0, 255]


def test_palette_without_transparency():
    img = Image.new("RGB", (2, 2), (0, 200, 0)).quantize(4)
    assert img.mode == "P"
    assert prepare_image(img, 2)[:, 0, 0].tolist() == [0, 200, 0]


def test_16bit_png_scaled_not_clipped():
    buffer = io.BytesIO()
    Image.fromarray(SIXTEEN_BIT).save(buffer, format="PNG")  # mode "I;16"
    buffer.seek(0)
    img = Image.open(buffer)
    assert img.mode in ("I;16", "I")
    out = prepare_image(img, (1, 4), color_mode="L")
    assert out[0, 0].tolist() == EXPECTED_8BIT
    rgb = prepare_image(img, (1, 4))
    assert rgb.shape == (3, 1, 4) and rgb[1, 0].tolist() == EXPECTED_8BIT


@pytest.mark.parametrize("mode", ["I;16B", "I"])
def test_other_16bit_layouts(mode):
    if mode == "I;16B":
        img = Image.frombytes("I;16B", (4, 1), SIXTEEN_BIT.astype(">u2").tobytes())
    else:
        img = Image.fromarray(SIXTEEN_BIT.astype(np.int32))
    assert img.mode == mode
    assert prepare_image(img, (1, 4), color_mode="L")[0, 0].tolist() == EXPECTED_8BIT


def test_float_images():
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert prepare_image(unit, (1, 3), color_mode="L")[0, 0].tolist() == [0, 128, 255]
    wide = Image.fromarray(np.array([[0.0, 100.0, 300.0]], dtype=np.float32))
    assert prepare_image(wide, (1, 3), color_mode="L")[0, 0].tolist() == [0, 100, 255]


def test_cmyk():
    out = prepare_image(Image.new("CMYK", (2, 2), (0, 0, 0, 0)), 2)
    assert out.shape == (3, 2, 2) and np.all(out == 255)


def _column_ramp(width: int, height: int) -> Image.Image:
    """Gray image whose pixel value is its column index."""
    return Image.fromarray(np.tile(np.arange(width, dtype=np.uint8), (height, 1)))


def test_center_crop_fraction_of_shorter_side():
    img = _column_ramp(40, 20)
    out = prepare_image(img, 10, center_crop=0.5, color_mode="L")  # 10 px side, no resize
    assert out[0, 0].tolist() == list(range(15, 25))
    full = prepare_image(img, 20, center_crop=1.0, color_mode="L")
    assert full[0, 0].tolist() == list(range(10, 30))


def test_center_crop_pixels():
    out = prepare_image(_column_ramp(40, 20), 6, center_crop=6, color_mode="L")
    assert out[0, 0].tolist() == list(range(17, 23))


@pytest.mark.parametrize("center_crop", [21, 0, 1.5, 0.0, "half"])
def test_center_crop_invalid(center_crop):
    with pytest.raises(ValueError, match=r"^data_processing\.preprocessing\.center_crop: "):
        prepare_image(_column_ramp(40, 20), 8, center_crop=center_crop)


def test_resize_downsampling_keeps_flat_regions():
    img = Image.new("RGB", (200, 100), (90, 160, 30))
    out = prepare_image(img, (10, 20))
    assert out.shape == (3, 10, 20)
    assert np.all(out == np.array([90, 160, 30], dtype=np.uint8)[:, None, None])


def test_binarize():
    img = Image.fromarray(np.array([[0, 127, 128, 255]], dtype=np.uint8))
    out = prepare_image(img, (1, 4), color_mode="L", binarize=0.5)  # 0.5*255 = 127.5
    assert out[0, 0].tolist() == [0, 0, 255, 255]
    assert set(np.unique(prepare_image(_column_ramp(40, 20), 8, binarize=0.3))) <= {0, 255}


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"image_size": 0}, "image_size"),
        ({"image_size": (4, 4, 4)}, "image_size"),
        ({"image_size": "32"}, "image_size"),
        ({"image_size": 8, "color_mode": "CMYK"}, "color_mode"),
        ({"image_size": 8, "binarize": 1.5}, "binarize"),
    ],
)
def test_invalid_parameters_name_themselves(kwargs, parameter):
    with pytest.raises(ValueError, match=rf"^data_processing\.preprocessing\.{parameter}: "):
        prepare_image(Image.new("RGB", (8, 8)), **kwargs)


def test_the_block_is_declared():
    config = preprocessing_config({"image_size": [28, 36], "center_crop": 0.8, "color_mode": "L", "binarize": 0.5})
    assert config == Preprocessing((28, 36), 0.8, "L", 0.5)
    assert config.size == (28, 36) and config.channels == 1
    assert preprocessing_config({"image_size": 32}).size == (32, 32)
    assert preprocessing_config({"image_size": 32}).channels == 3


def test_center_crop_int_is_pixels_float_is_a_fraction():
    assert isinstance(preprocessing_config({"image_size": 8, "center_crop": 300}).center_crop, int)
    assert preprocessing_config({"image_size": 8, "center_crop": 1.0}).center_crop == 1.0


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(
        ValueError,
        match=r"^data_processing\.preprocessing\.colour_mode: unknown parameter; "
        r"valid: \['image_size', 'center_crop', 'color_mode', 'binarize'\]$",
    ):
        preprocessing_config({"image_size": 8, "colour_mode": "L"})


def test_missing_image_size_and_wrong_type_are_named():
    with pytest.raises(ValueError, match=r"^data_processing\.preprocessing\.image_size: required parameter"):
        preprocessing_config({"color_mode": "L"})
    with pytest.raises(ValueError, match=r"^data_processing\.preprocessing\.binarize: expected a number or null"):
        preprocessing_config({"image_size": 8, "binarize": "yes"})


def test_prepare_with_a_config_equals_prepare_image():
    img = _column_ramp(40, 20)
    config = preprocessing_config({"image_size": 8, "center_crop": 0.5, "color_mode": "L", "binarize": 0.3})
    np.testing.assert_array_equal(prepare(img, config), prepare_image(img, 8, 0.5, "L", 0.3))
