"""Row-RNN sampler: the incremental sampler against the naive full-forward-per-pixel reference.

Run on demand: `python tests/benchmarks/bench_rowrnn_sampler.py [--images 64] [--budget 120]
[--threads N] [--device cpu]`. A default-size, randomly initialised `rowrnn` inpaints CIFAR-size
images (the shared CIFAR-10 sample's test split, random images if it is absent) with one 16x16 box
hole each (25 % of the image), greedily. The naive path costs one full image forward per hole
position and channel, so when it would take longer than `--budget` seconds it runs on a raster-order
prefix of the hole positions and its total time is extrapolated (said so in the output). Prints the
two times, their ratio, whether the greedy completions agree, and the hole NLL from both paths.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from pixelheal.data import build_image_set, make_source
from pixelheal.evaluation.scoring import timed
from pixelheal.masks import make_mask_generator
from pixelheal.models import make_model
from pixelheal.models.rowrnn import RowRNNInpainter

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10_sample" / "test"
SIZE = 32


def load_images(n: int) -> tuple[np.ndarray, str]:
    """n uint8 (n, 3, 32, 32) images and where they came from."""
    if SAMPLE.is_dir():
        images = np.array(
            build_image_set(make_source("image_folder", path=str(SAMPLE)), image_size=SIZE, progress=False).images
        )
        if len(images) >= n:
            return images[:n], f"CIFAR-10 sample ({SAMPLE})"
    return np.random.default_rng(0).integers(
        0, 256, (n, 3, SIZE, SIZE), dtype=np.uint8
    ), "random images (sample absent)"


def box_masks(n: int) -> np.ndarray:
    """One 16x16 hole per image (25 % of 32x32), seeded per image."""
    generator = make_mask_generator("box", hole_size=0.5)
    return np.stack([generator(SIZE, SIZE, np.random.default_rng([0, i])) for i in range(n)])


def naive_prefix(model: RowRNNInpainter, x: torch.Tensor, m: torch.Tensor, budget: float, device: torch.device):
    """Naive greedy completion of as many hole positions as fit the budget: (output, positions done, seconds)."""
    total = int(m.amax(0)[0].sum())
    _, probe = timed(lambda: model.naive_sample(x, m, greedy=True, max_positions=4), device)
    done = min(total, max(4, int(budget / (probe / 4))))
    out, seconds = timed(lambda: model.naive_sample(x, m, greedy=True, max_positions=done), device)
    return out, done, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument(
        "--budget", type=float, default=120.0, help="seconds the naive path may run before extrapolating"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images, origin = load_images(args.images)
    x = torch.from_numpy(images).float().div(255).to(device)
    m = torch.from_numpy(box_masks(args.images)).float().to(device)
    torch.manual_seed(0)
    model = make_model("rowrnn", sampling="greedy").eval().to(device)

    model.inpaint(x[:2], m[:2])  # warm-up
    fast, fast_s = timed(lambda: model.inpaint(x, m), device)
    _, sample_s = timed(lambda: model.sample(x, m, greedy=False), device)
    naive, done, naive_s = naive_prefix(model, x, m, args.budget, device)
    total = int(m.amax(0)[0].sum())
    naive_total = naive_s * total / done

    positions = m.amax(0)[0].flatten().nonzero().flatten()[:done]  # the prefix the naive path filled
    compared = (m.flatten(2)[:, :, positions] > 0).expand(-1, 3, -1)
    differ = (fast.flatten(2)[:, :, positions] != naive.flatten(2)[:, :, positions]) & compared
    nll_full = model.test_metrics(x, m)["nll_bpd"]
    nll_fast = model.sampler_nll_bpd(x, m)

    print(
        f"data              : {args.images} images of {origin}, 16x16 box holes (25 %), {device}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"model             : default rowrnn, {sum(p.numel() for p in model.parameters()):,} parameters, random init")
    print(
        f"fast sampler      : {fast_s:8.2f} s greedy, {sample_s:.2f} s sampling ({total} positions holed in some image)"
    )
    scope = "measured" if done == total else f"EXTRAPOLATED from {done} of {total} positions ({naive_s:.1f} s)"
    print(f"naive (per pixel) : {naive_total:8.2f} s greedy, {scope}")
    print(f"speed-up          : {naive_total / fast_s:8.1f}x  (naive / fast, goal >= 4x)")
    print(f"greedy agreement  : {int(differ.sum())} of {int(compared.sum())} compared hole sub-pixels differ")
    print(
        f"hole NLL bits/dim : teacher-forced {nll_full.mean():.6f}, incremental sampler {nll_fast.mean():.6f}, "
        f"max |diff| per image {(nll_full - nll_fast).abs().max():.2e}"
    )


if __name__ == "__main__":
    main()
