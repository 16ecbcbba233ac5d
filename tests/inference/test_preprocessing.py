"""Training ingestion and inpainting read one file into the same pixels (16-bit, palette + transparency)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelheal.data import build_image_set, make_source
from pixelheal.inference import Inpainter, inpaint_folder
from pixelheal.models import InpaintingModel

HEIGHT, WIDTH = 10, 12


class Recorder(InpaintingModel):
    """A stand-in architecture that keeps the images it is given and returns them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, images, masks):
        self.seen.append(images.clone())
        return images


def _sixteen_bit(values: np.ndarray, path: Path) -> Path:
    Image.fromarray(values.astype(np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")  # really a 16-bit file
    return path


def _palette_with_transparency(path: Path) -> Path:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 4, (HEIGHT, WIDTH), dtype=np.uint8), mode="P")
    image.putpalette([200, 10, 10, 10, 200, 10, 10, 10, 200, 0, 0, 0] + [0] * (256 - 4) * 3)
    image.save(path, transparency=3)  # index 3 (black in the palette) is transparent
    assert Image.open(path).mode == "P" and "transparency" in Image.open(path).info
    return path


def _write_files(folder: Path) -> list[Path]:
    folder.mkdir()
    ramp = np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH)
    return [
        _sixteen_bit(ramp * 2, folder / "a_dark16.png"),  # every value <= 255: still 16-bit, so scaled
        _sixteen_bit(ramp * 500, folder / "b_full16.png"),
        _palette_with_transparency(folder / "c_palette.png"),
    ]


def _ingested(folder: Path, color_mode: str) -> np.ndarray:
    """The (N, C, H, W) uint8 arrays training reads from `folder`, in file order."""
    source = make_source("image_folder", path=str(folder))
    return np.asarray(build_image_set(source, image_size=(HEIGHT, WIDTH), color_mode=color_mode, progress=False).images)


@pytest.mark.parametrize("color_mode, channels", [("RGB", 3), ("L", 1)])
def test_inpainting_sees_the_pixels_training_ingestion_stores(tmp_path, color_mode, channels):
    files = _write_files(tmp_path / "images")
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[2:5, 3:7] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    recorder = Recorder()
    inpainter = Inpainter(recorder, "recorder", (HEIGHT, WIDTH), channels, torch.device("cpu"))
    inpaint_folder(inpainter, tmp_path / "images", tmp_path / "mask.png", tmp_path / "out", batch_size=len(files))
    (seen,) = recorder.seen  # (N, C, H, W) in [0, 1], at the files' own size: no resampling
    expected = _ingested(tmp_path / "images", color_mode)
    assert expected.shape == (len(files), channels, HEIGHT, WIDTH)
    assert np.array_equal(seen.mul(255).round().to(torch.uint8).numpy(), expected)
    assert expected[0].max() < 3  # the dark 16-bit file: 0..238 of 65535 scales to 0..1, as in ingestion
    assert expected[2].min() > 0 or color_mode == "L"  # transparent pixels are white, not the palette's black
    for path, image in zip(files, expected):
        written = np.asarray(Image.open(tmp_path / "out" / path.name))
        written = written[None] if written.ndim == 2 else written.transpose(2, 0, 1)
        assert np.array_equal(written[:, mask == 0], image[:, mask == 0])
