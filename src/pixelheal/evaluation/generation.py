"""Pictures of a model while it trains: digits generated from a blank canvas, reconstructions of fixed images.

Both take the model where it is (its device, training or eval mode), render in eval mode without
gradients, and give the mode back, so a training loop can call them between epochs (see
`epoch_pictures`). They draw with their own seeded generator and never touch torch's global RNG,
so training goes on exactly as it would without them.

contract: images uint8 N×C×H×W (C = 1 or 3), masks uint8 N×1×H×W with 1 = hole (as `grids`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np
import torch
from PIL import Image

from pixelheal.evaluation.grids import image_grid, sample_grid
from pixelheal.evaluation.scoring import to_uint8
from pixelheal.models.autoregressive import AutoregressiveInpainter
from pixelheal.models.base import InpaintingModel

Picture = Callable[[InpaintingModel], Image.Image]


def _in_eval_mode(model: InpaintingModel, render: Callable[[], torch.Tensor]) -> torch.Tensor:
    """`render()` with `model` in eval mode and no gradients; the model's mode is restored after."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return render()
    finally:
        model.train(training)


def generation_grid(
    model: InpaintingModel, n: int, size: int | tuple[int, int], seed: int = 0, columns: int = 8
) -> Image.Image:
    """`n` images drawn from a blank canvas (`model.generate`), `columns` to a row; one seed, the same draws.

    `size` is the side of a square image or (height, width). The draws are reproducible for a seed
    on one device (CPU and CUDA random streams differ).
    """
    if not isinstance(model, AutoregressiveInpainter):
        raise ValueError(f"generation_grid: {type(model).__name__} does not generate images (not autoregressive)")
    height, width = (size, size) if isinstance(size, int) else size
    device = next(model.parameters(), torch.empty(0)).device
    generator = torch.Generator(device=device).manual_seed(seed)
    images = _in_eval_mode(model, lambda: model.generate(n, height, width, generator=generator))
    return image_grid(to_uint8(images), columns)


def reconstruction_grid(model: InpaintingModel, images: np.ndarray, masks: np.ndarray) -> Image.Image:
    """One row per image: original / mask / masked input / the model's composited completion (`inpaint`)."""
    images, masks = np.asarray(images), np.asarray(masks)
    if images.ndim != 4 or images.dtype != np.uint8 or masks.shape != (len(images), 1, *images.shape[2:]):
        raise ValueError(
            f"reconstruction_grid: images must be uint8 N×C×H×W with masks N×1×H×W, got {images.dtype} "
            f"{images.shape} and {masks.shape}"
        )
    device = next(model.parameters(), torch.empty(0)).device
    x = torch.from_numpy(images).to(device).float() / 255
    m = torch.from_numpy(masks).to(device).float()
    outputs = _in_eval_mode(model, lambda: model.inpaint(x, m))
    return sample_grid(images, masks, to_uint8(outputs), n=len(images))


def epoch_pictures(
    model: InpaintingModel,
    picture: Picture,
    epochs: Collection[int],
    save: Callable[[int, Image.Image], None],
) -> Callable[[dict[str, float]], None]:
    """An `on_epoch` callback for `training.train`: after each epoch in `epochs` (1-based), `save(epoch, picture(model))`."""
    wanted = set(epochs)

    def on_epoch(record: dict[str, float]) -> None:
        epoch = int(record["epoch"])
        if epoch in wanted:
            save(epoch, picture(model))

    return on_epoch


def progress_picture(
    model: InpaintingModel, images: np.ndarray, masks: np.ndarray, seed: int = 0
) -> Callable[[InpaintingModel], Image.Image]:
    """What training shows every few epochs: generations of an unconditional model, else reconstructions of `images`."""
    if isinstance(model, AutoregressiveInpainter) and model.unconditional:
        return lambda m: generation_grid(m, 64, tuple(images.shape[2:]), seed=seed)
    return lambda m: reconstruction_grid(m, images, masks)
