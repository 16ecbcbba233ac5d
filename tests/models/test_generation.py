"""Generation: a briefly trained PixelCNN draws what it learned; generation / reconstruction grids, the epoch callback."""

import numpy as np
import pytest
import torch
from PIL import Image

from pixelheal.evaluation.generation import epoch_pictures, generation_grid, reconstruction_grid
from pixelheal.evaluation.grids import image_grid, sample_grid
from pixelheal.evaluation.scoring import to_uint8
from pixelheal.models import make_model
from pixelheal.models.pixelcnn import PixelCNNInpainter
from pixelheal.training import TrainConfig, train


def _stroke() -> torch.Tensor:
    """An 8x8 binary "L": a vertical bar in column 2 (rows 1-6) and a foot along row 6 (columns 2-5)."""
    pattern = torch.zeros(1, 1, 8, 8)
    pattern[..., 1:7, 2] = 1
    pattern[..., 6, 2:6] = 1
    return pattern


@pytest.fixture(scope="module")
def stroke_model() -> PixelCNNInpainter:
    """An unconditional PixelCNN trained on a dataset where every image is the same stroke."""
    torch.manual_seed(0)
    model = make_model("pixelcnn", in_channels=1, hidden=16, n_blocks=2, output="bernoulli", conditional=False)
    model.train()
    images, masks = _stroke().repeat(8, 1, 1, 1), torch.zeros(8, 1, 8, 8)  # masks: ignored by the loss
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        model.training_step(images, masks, {"model": optimizer})
    return model.eval()


def test_a_briefly_trained_model_generates_the_stroke_it_learned(stroke_model):
    pattern = _stroke()
    generated = stroke_model.generate(32, 8, 8, generator=torch.Generator().manual_seed(0))
    agreement = (generated == pattern).float()
    assert agreement.mean() >= 0.97  # neither blank (84 % agreement) nor noise (50 %)
    assert agreement[pattern.expand_as(agreement) == 1].mean() >= 0.9  # the stroke's pixels are drawn
    assert (agreement.flatten(1).mean(1) == 1).float().mean() >= 0.8  # most digits are the whole stroke


def test_an_unconditional_model_inpaints_by_fixing_the_known_pixels(stroke_model):
    pattern = _stroke().repeat(4, 1, 1, 1)
    masks = torch.zeros(4, 1, 8, 8)
    masks[..., 3:7, 1:5] = 1  # the lower bar and half the foot are missing
    out = stroke_model.sample(pattern, masks, generator=torch.Generator().manual_seed(1))
    assert (out == pattern).float().mean() >= 0.97


def _pixelcnn(seed: int = 0):
    torch.manual_seed(seed)
    return make_model("pixelcnn", in_channels=1, hidden=8, n_blocks=1, output="bernoulli", conditional=False)


def _pixelheal(seed: int = 0):
    torch.manual_seed(seed)
    return make_model("pixelheal", hidden=8, n_layers=1)


def test_generation_grid_tiles_seeded_draws_without_touching_the_global_rng():
    model = _pixelcnn().train()
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    grid = generation_grid(model, 10, 6, seed=3, columns=5)
    assert torch.equal(torch.random.get_rng_state(), before)  # training draws go on as without the grid
    assert model.training  # the mode it was in
    assert isinstance(grid, Image.Image) and grid.mode == "RGB"
    expected = model.eval().generate(10, 6, 6, generator=torch.Generator().manual_seed(3))
    assert np.array_equal(np.asarray(grid), np.asarray(image_grid((expected * 255).byte().numpy(), 5)))
    assert np.array_equal(np.asarray(generation_grid(model, 10, (6, 6), seed=3, columns=5)), np.asarray(grid))
    assert not np.array_equal(np.asarray(generation_grid(model, 10, 6, seed=4, columns=5)), np.asarray(grid))


def test_generation_grid_refuses_a_model_that_does_not_generate():
    with pytest.raises(ValueError, match="PixelHealInpainter does not generate images"):
        generation_grid(_pixelheal(), 4, 8)


def test_reconstruction_grid_shows_the_composited_completion():
    model = _pixelheal().train()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 3, 8, 8), dtype=np.uint8)
    masks = np.zeros((3, 1, 8, 8), dtype=np.uint8)
    masks[..., 2:5, 2:6] = 1
    grid = reconstruction_grid(model, images, masks)
    assert model.training  # the mode it was in
    x, m = torch.from_numpy(images).float() / 255, torch.from_numpy(masks).float()
    expected = sample_grid(images, masks, to_uint8(model.eval().inpaint(x, m)), n=3)
    assert np.array_equal(np.asarray(grid), np.asarray(expected))
    with pytest.raises(ValueError, match="reconstruction_grid: images must be uint8"):
        reconstruction_grid(model, images.astype(np.float32), masks)


def test_epoch_pictures_renders_the_chosen_epochs_during_training():
    rng = np.random.default_rng(0)
    images = (rng.random((12, 1, 6, 6)) > 0.5).astype(np.uint8) * 255
    masks = (rng.random((12, 1, 6, 6)) < 0.3).astype(np.uint8)
    cfg = TrainConfig(epochs=3, batch_size=4, optimizer="adam", device="cpu", select_on="val_nll_bpd")
    saved: dict[int, Image.Image] = {}
    model = _pixelcnn()
    callback = epoch_pictures(model, lambda m: generation_grid(m, 4, 6, seed=0), [1, 3], saved.__setitem__)
    with_pictures = train(model, images, masks, np.arange(8), np.arange(8, 12), cfg, on_epoch=callback)
    assert sorted(saved) == [1, 3] and all(isinstance(p, Image.Image) for p in saved.values())
    without = train(_pixelcnn(), images, masks, np.arange(8), np.arange(8, 12), cfg)
    assert [r["val_loss"] for r in with_pictures.history] == [r["val_loss"] for r in without.history]
