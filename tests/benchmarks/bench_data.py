"""Data benchmark on the shared CIFAR-10 sample: ingestion and mask throughput, DeepLabV3 batching.

Run on demand: `python tests/benchmarks/bench_data.py`. Prints images/s and ratios measured in
this one run (timings depend on the machine; compare only numbers printed together).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

from pixelheal.data import build_image_set, make_source
from pixelheal.masks import DeepLabV3MaskGenerator, make_mask_generator, precompute_masks

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10_sample" / "train"


def timed(label: str, n: int, func):
    """Run `func`, print its throughput in images/s, return its result and the seconds it took."""
    tick = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - tick
    print(f"{label:<46} {n:>6} images {seconds:7.2f} s {n / seconds:9.1f} images/s")
    return result, seconds


def main() -> None:
    if not SAMPLE.is_dir():
        sys.exit(f"the shared CIFAR-10 sample is not at {SAMPLE}")
    source = make_source("image_folder", path=str(SAMPLE))
    image_set, _ = timed(
        "ingest image_folder (decode, resize 32x32)",
        len(source),
        lambda: build_image_set(source, image_size=32, progress=False),
    )
    images = image_set.images
    for kind, options in (
        ("irregular", {"preset": "medium", "max_hole_fraction": 0.5}),
        ("box", {"hole_size": [0.2, 0.4], "aspect": "rect"}),
    ):
        generator = make_mask_generator(kind, **options)
        timed(
            f"precompute {kind} masks",
            len(images),
            lambda g=generator: precompute_masks(images, g, seed=0, progress=False),
        )

    torch.manual_seed(0)
    network = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21, aux_loss=False)
    subset = np.ascontiguousarray(images[:64])

    def deeplab(batch_size: int):
        generator = DeepLabV3MaskGenerator.from_model(network, input_size=256, batch_size=batch_size)
        return lambda: precompute_masks(subset, generator, seed=0, batch_size=batch_size, progress=False)

    deeplab(8)()  # warm-up: first calls pay for allocator and kernel selection
    seconds = {b: timed(f"deeplabv3 (random init, 256 px) batch {b}", len(subset), deeplab(b))[1] for b in (1, 8, 32)}
    for b in (8, 32):
        print(f"deeplabv3 batch {b} vs one image at a time: {seconds[1] / seconds[b]:.2f}x the throughput")


if __name__ == "__main__":
    main()
