"""Benchmark: the cropped PixelCNN hole sampler against the naive full-image sampler.

Run on demand (not collected by pytest):

    python tests/benchmarks/bench_sampler.py [--device cpu] [--threads 1] [--naive-images 4] [--kinds pixelcnn,gated]

64 CIFAR-size images (the shared CIFAR-10 sample's test images when present, else random) with
one 16x16 box hole each (25 % of the pixels), a randomly initialised default-size PixelCNN
(hidden 64, 4 blocks) and Gated PixelCNN. Both samplers run greedy, so their completions must be
identical. The naive sampler runs on `--naive-images` images: 4 by default, since all 64 take about
an hour per architecture on a 2-core CPU (`--naive-images 64` measures them all). On a subset the
fast sampler is timed on the same images for the measured ratio; the naive time for 64 images is
then extrapolated linearly and labelled so. `--threads 1` is fastest on a busy machine: the cropped
passes are small, and idle-spinning threads cost more than they give.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixelheal.evaluation.scoring import timed
from pixelheal.masks import BoxMaskGenerator
from pixelheal.models import make_model

CIFAR_TEST = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10_sample" / "test"
N_IMAGES, SIZE = 64, 32


def load_images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """n uint8 images (n, 3, 32, 32): CIFAR-10 sample test images if present, else random."""
    files = sorted(CIFAR_TEST.glob("*/*.jpg"))
    if len(files) < n:
        return rng.integers(0, 256, (n, 3, SIZE, SIZE), dtype=np.uint8), "random images (CIFAR sample not found)"
    picks = rng.choice(len(files), n, replace=False)
    images = np.stack([np.asarray(Image.open(files[k]).convert("RGB").resize((SIZE, SIZE))) for k in picks])
    return images.transpose(0, 3, 1, 2).copy(), f"CIFAR-10 sample test images from {CIFAR_TEST}"


def bench_one(gated: bool, x: torch.Tensor, m: torch.Tensor, n_naive: int, device: torch.device) -> float:
    """Time both samplers for one architecture, check they agree; returns the measured speed-up."""
    name = "gated pixelcnn" if gated else "pixelcnn"
    torch.manual_seed(0)
    model = make_model("pixelcnn", hidden=64, n_blocks=4, gated=gated).eval().to(device)
    with torch.no_grad():
        model.sample(x[:2, :, :8], m[:2, :, :8], greedy=True)  # warm-up
        fast, t_fast = timed(lambda: model.sample(x, m, greedy=True), device)
        xs, ms = x[:n_naive], m[:n_naive]
        fast_sub, t_fast_sub = (
            (fast, t_fast) if n_naive == len(x) else timed(lambda: model.sample(xs, ms, greedy=True), device)
        )
        naive, t_naive = timed(lambda: model.naive_sample(xs, ms, greedy=True), device)
        nll_full = model.test_metrics(x, m)["nll_bpd"]
        nll_crop = model.sampler_nll_bpd(x, m)
        nll_fast, nll_naive = (model.test_metrics(out, ms)["nll_bpd"] for out in (fast_sub, naive))

    ratio = t_naive / t_fast_sub
    print(f"\n== {name}: hidden 64, 4 blocks, reach {model.trunk.reach}")
    print(f"fast sampler, {len(x)} images: {t_fast:.2f} s ({1000 * t_fast / len(x):.1f} ms/image)")
    if n_naive == len(x):
        print(f"naive sampler, {n_naive} images: {t_naive:.2f} s (measured)")
    else:
        print(
            f"naive sampler, {n_naive} images: {t_naive:.2f} s (measured); fast on the same {n_naive}: {t_fast_sub:.2f} s"
        )
        print(
            f"naive sampler, {len(x)} images: ~{t_naive * len(x) / n_naive:.0f} s "
            f"(EXTRAPOLATED linearly from {n_naive} images, not measured)"
        )
        print(
            f"speed-up at {len(x)} images: ~{t_naive * len(x) / n_naive / t_fast:.0f}x (from the EXTRAPOLATED naive time)"
        )
    print(f"speed-up (measured, {n_naive} images): {ratio:.1f}x   goal >= 4x")
    print(f"completions identical (greedy, {n_naive} images): {torch.equal(fast_sub, naive)}")
    print(
        f"NLL of the true holes, bits/dim: full pass {nll_full.nanmean():.6f}, cropped passes "
        f"{nll_crop.nanmean():.6f}, max |diff| {(nll_full - nll_crop).abs().max():.2e}"
    )
    print(f"NLL of the completions, bits/dim: fast {nll_fast.nanmean():.6f}, naive {nll_naive.nanmean():.6f}")
    return ratio


def main() -> None:
    """Parse the options, build the batch, benchmark both architectures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--naive-images",
        type=int,
        default=4,
        help="images for the naive sampler (64 = all, about an hour per architecture on 2 CPU cores)",
    )
    parser.add_argument("--kinds", default="pixelcnn,gated", help="comma-separated: pixelcnn, gated")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    images, source = load_images(N_IMAGES, rng)
    boxes = BoxMaskGenerator(hole_size=0.5)  # a 16x16 box: 25 % of a 32x32 image
    masks = np.stack([boxes(SIZE, SIZE, rng) for _ in range(N_IMAGES)])
    x = torch.from_numpy(images).float().div(255).to(device)  # (64, 3, 32, 32) in [0, 1]
    m = torch.from_numpy(masks).float().to(device)  # (64, 1, 32, 32), 1 = hole
    print(f"{source}; holes {m.mean():.1%} of pixels; device {device}, {torch.get_num_threads()} CPU threads")
    n_naive = min(max(args.naive_images, 1), N_IMAGES)
    ratios = {kind: bench_one(kind == "gated", x, m, n_naive, device) for kind in args.kinds.split(",")}
    print("\nspeed-up ratios: " + ", ".join(f"{kind} {ratio:.1f}x" for kind, ratio in ratios.items()))


if __name__ == "__main__":
    main()
