"""Data-parallel speed-up on this machine's CPU cores: world_size 1 against 2, same global batch, 1 thread per rank.

Run on demand, on an otherwise idle machine: `python tests/benchmarks/bench_distributed.py [epochs] [images]`
(defaults 3 epochs, 1024 generated 32x32 images; `1 64` is a quick check that it runs). Trains the
embedded default unet_frm through the train node (gloo on loopback) and prints the epoch time of each
world size (rank 0's training + validation, the start of the ranks excluded; it is printed apart) and
the ratio. What limits it on CPU: the gradient all-reduce every step, rank 0 validating alone while the
other ranks wait, and two processes sharing the memory bandwidth of the cores.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pixelheal.pipelines.train.nodes import train_model

MODEL = {"kind": "unet_frm", "widths": [16, 32, 64, 128], "loss": "mse", "hole_weight": 5.0, "hole_fill": "biharmonic"}
TRAINING = {"batch_size": 64, "optimizer": "adamw", "lr": 2e-3, "device": "cpu", "threads": 1, "flip": True}


def run(world_size: int, images: np.ndarray, masks: np.ndarray, splits: dict, epochs: int) -> tuple[float, float]:
    """(seconds of the epochs, seconds in all) of one training at `world_size`."""
    training = TRAINING | {"epochs": epochs, "distributed": {"world_size": world_size, "master_port": 0}}
    with tempfile.TemporaryDirectory() as folder:
        tick = time.perf_counter()
        checkpoint, _ = train_model(images, masks, splits, MODEL, training, Path(folder) / "state.pt")
        total = time.perf_counter() - tick
    return sum(record["seconds"] for record in checkpoint.history), total


def main() -> None:
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    masks = (rng.random((n, 1, 32, 32)) < 0.25).astype(np.uint8)
    cut = n * 8 // 10
    splits = {"train": list(range(cut)), "val": list(range(cut, n * 9 // 10)), "test": list(range(n * 9 // 10, n))}
    one, one_total = run(1, images, masks, splits, epochs)
    two, two_total = run(2, images, masks, splits, epochs)
    images_seen = cut * epochs
    print(f"world_size 1: {images_seen / one:8.1f} train images/s (epochs {one:.1f} s, in all {one_total:.1f} s)")
    print(f"world_size 2: {images_seen / two:8.1f} train images/s (epochs {two:.1f} s, in all {two_total:.1f} s)")
    print(f"data-parallel speed-up (epoch time 1 / epoch time 2): {one / two:.2f}x")


if __name__ == "__main__":
    main()
