"""Framework overhead: the Kedro training node against a bare PyTorch loop, same model and data.

Run on demand: `python tests/benchmarks/bench_training.py [epochs]`. Both train the embedded
default unet_aspp on the shared CIFAR-10 sample (irregular masks) for the same epochs; the node
runs through a Kedro SequentialRunner with its memory-mapped catalog inputs and also validates
and checkpoints every epoch, as in a real run. Each is timed twice, alternating, and its best time kept. Prints images/s and the ratio.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner

from pixelheal.data import build_image_set, make_source
from pixelheal.data.split import split_indices
from pixelheal.datasets import NumpyArrayDataset
from pixelheal.masks import make_mask_generator, precompute_masks
from pixelheal.models import make_model
from pixelheal.pipelines.train.nodes import train_model

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10_sample" / "train"
MODEL = {"kind": "unet_aspp", "widths": [16, 32, 64, 128], "dilations": [1, 2, 4], "loss": "mse", "hole_weight": 5.0}
BATCH, LR = 64, 2e-3


def bare_loop(images: np.ndarray, masks: np.ndarray, train_idx: np.ndarray, epochs: int) -> float:
    """Seconds for a plain loop: in-memory tensors, shuffled batches, one Adam step per batch."""
    torch.manual_seed(0)
    model = make_model(MODEL["kind"], in_channels=3, **{k: v for k, v in MODEL.items() if k != "kind"})
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    x_all = torch.from_numpy(np.ascontiguousarray(images[train_idx])).float() / 255
    m_all = torch.from_numpy(np.ascontiguousarray(masks[train_idx])).float()
    tick = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(x_all)).split(BATCH):
            optimizer.zero_grad(set_to_none=True)
            model.losses(x_all[batch], m_all[batch])["loss"].backward()
            optimizer.step()
    return time.perf_counter() - tick


def kedro_node(folder: Path, images, masks, splits, epochs: int) -> float:
    """Seconds for `<arch>.train` run by Kedro with memory-mapped catalog inputs."""
    catalog = DataCatalog(
        {
            "images": NumpyArrayDataset(filepath=str(folder / "images.npy")),
            "masks": NumpyArrayDataset(filepath=str(folder / "masks.npy")),
            "split_indices": MemoryDataset(splits),
            "params:model": MemoryDataset(MODEL),
            "params:training": MemoryDataset(
                {"epochs": epochs, "batch_size": BATCH, "lr": LR, "flip": False, "device": "cpu"}
            ),
            "train_state": MemoryDataset(folder / "state.pt"),
        }
    )
    catalog.save("images", images)
    catalog.save("masks", masks)
    pipeline = Pipeline(
        [
            Node(
                train_model,
                ["images", "masks", "split_indices", "params:model", "params:training", "train_state"],
                "checkpoint",
                name="train",
            )
        ]
    )
    tick = time.perf_counter()
    SequentialRunner().run(pipeline, catalog)
    return time.perf_counter() - tick


def main() -> None:
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    if not SAMPLE.is_dir():
        sys.exit(f"the shared CIFAR-10 sample is not at {SAMPLE}")
    image_set = build_image_set(make_source("image_folder", path=str(SAMPLE)), image_size=32, progress=False)
    images = np.array(image_set.images)
    generator = make_mask_generator("irregular", preset="medium", max_hole_fraction=0.5)
    masks = np.array(precompute_masks(images, generator, seed=0, progress=False).masks)
    splits = split_indices(image_set.metadata, {"train": 0.8, "val": 0.1, "test": 0.1})
    n = len(splits["train"]) * epochs
    # Alternate the two and keep each one's best time, so a busy moment hurts neither unfairly.
    node, bare = float("inf"), float("inf")
    for _ in range(2):
        bare = min(bare, bare_loop(images, masks, np.asarray(splits["train"]), epochs))
        with tempfile.TemporaryDirectory() as folder:
            node = min(node, kedro_node(Path(folder), images, masks, splits, epochs))
    print(f"bare PyTorch loop : {n / bare:8.1f} train images/s ({bare:.1f} s)")
    print(f"Kedro train node  : {n / node:8.1f} train images/s ({node:.1f} s, incl. validation and checkpoints)")
    print(f"framework overhead: {100 * (node / bare - 1):+.1f} % (node time / bare time = {node / bare:.3f})")


if __name__ == "__main__":
    main()
