"""Training efficiency on the CPU: train-step FLOPs per image, images/s, and the share of a measured convolution peak.

Run on demand from the project root: `python -m tests.benchmarks.bench_efficiency [--steps N] [--threads T]
[architecture ...]` (default: every architecture, at most 4 timed steps each, all the CPU's cores). Each
architecture is built from its `cifar10_cpu` parameters (the U-Nets, GAN, PixelCNN and Row-RNN blocks of
conf/cifar10_cpu; `pixelheal` has only its base block) and takes its own `training_step` with the optimisers
`training.loop.train` makes, at its batch size, on random uint8 images and masks from the environment's mask
generator: no dataset is read. FLOPs are what `torch.utils.flop_counter.FlopCounterMode` counts over one whole
step (forward and backward matmuls and convolutions; the optimiser's and the fills' elementwise work is not
counted), divided by the batch. Each speed option is applied as the training loop applies it (`training.throughput`):
`channels_last` (networks and batches), `precision: bf16` (autocast around the step), both, and with `--compile`
both plus `torch.compile` (its compilation, minutes on a CPU, is left out of the rate). The peak is a 3x3
convolution 64->64 (batch 64, 32x32, forward and backward), the best of PEAK_TRIES timings, since a shorter or
disturbed one reads low. On a shared machine what the chip delivers drifts by half within minutes, so the bf16 peak
is timed just before and just after each architecture's timings, and its "% of bf16 peak" relates the
architecture's achieved GFLOP/s to the better of those two: the best the chip showed beside it. Each timing runs
two warm-up steps,
then up to `--steps` steps (fewer when one step is slow: about SECONDS per timing, one warm-up and at least one
step for steps over SECONDS / 3). Like the peak, each rate is the best of `--tries` timings (default TRIES): one
disturbed timing of a few seconds reads a quarter low here, which a single try would put on the architecture.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pixelheal.masks import make_mask_generator
from pixelheal.models import ARCHITECTURES, make_model
from pixelheal.training import throughput
from pixelheal.training.optim import make_optimizer
from tests.conftest import environment_parameters

ENV = "cifar10_cpu"
SIZE = 32
WARMUP = 2  # oneDNN creates its primitives on the first calls
SECONDS = 6.0  # aim for a timing, so that the slow autoregressive steps stay few
PEAK_STEPS = 60  # a few seconds: shorter timings of the bf16 convolution read up to a quarter low
PEAK_TRIES = 3
TRIES = 3  # timings per architecture and option, the best kept (as for the peak)
CPU = torch.device("cpu")
# (channels_last, precision, compile)
OPTIONS = {"channels_last": (True, "fp32", False), "bf16": (False, "bf16", False), "both": (True, "bf16", False)}
COMPILED = {"both + compile": (True, "bf16", True)}


def steps_per_second(step: Callable[[], object], steps: int, seconds: float = SECONDS) -> float:
    """Rate of `step` over up to `steps` timed calls (about `seconds`' worth, at least 1) after the warm-up.

    A step that alone takes a third of `seconds` gets one warm-up call: its start-up cost is small beside it.
    """
    for _ in range(WARMUP):
        tick = time.perf_counter()
        step()
        took = time.perf_counter() - tick
        if took > seconds / 3:
            break
    n = int(max(1, min(steps, seconds / took)))
    tick = time.perf_counter()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - tick)


def best_rate(step: Callable[[], object], steps: int, tries: int) -> float:
    """The best of `tries` rates of `step` (see `steps_per_second`)."""
    return max(steps_per_second(step, steps) for _ in range(tries))


def flops(step: Callable[[], object]) -> int:
    """FLOPs of one call of `step`, backward included."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def conv_peak(channels_last: bool, precision: str) -> float:
    """GFLOP/s of a 3x3 convolution 64->64 on a batch of 64 32x32 maps, forward and backward (best of PEAK_TRIES)."""
    torch.manual_seed(0)
    fmt = throughput.memory_format(channels_last)
    conv = nn.Conv2d(64, 64, 3, padding=1).to(memory_format=fmt)
    x = torch.randn(64, 64, SIZE, SIZE).to(memory_format=fmt).requires_grad_()
    dtype = throughput.autocast_dtype(precision, CPU, "precision")

    def step() -> None:
        with throughput.autocast(CPU, dtype):
            y = conv(x)
        y.sum().backward()

    rate = max(steps_per_second(step, PEAK_STEPS, math.inf) for _ in range(PEAK_TRIES))
    return flops(step) * rate / 1e9


def batch(generator_block: dict, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images in [0, 1] from uint8 (as the loader gives them) and generated masks, 1 = hole."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size, 3, SIZE, SIZE), dtype=np.uint8)
    generator = make_mask_generator(**generator_block)
    masks = np.stack([generator(SIZE, SIZE, np.random.default_rng([0, i])) for i in range(batch_size)])
    return torch.from_numpy(images).float().div_(255), torch.from_numpy(masks).float()


def train_step(
    block: dict,
    images: torch.Tensor,
    masks: torch.Tensor,
    channels_last: bool = False,
    precision: str = "fp32",
    compiled: bool = False,
):
    """A fresh model's training step as `training.loop.train` takes it, with its speed options."""
    torch.manual_seed(0)
    model_block, training = block["model"], block["training"]
    model = make_model(model_block["kind"], **{k: v for k, v in model_block.items() if k != "kind"}).train()
    layout = throughput.memory_format(channels_last)
    model.to(memory_format=layout)
    images, masks = images.to(memory_format=layout), masks.to(memory_format=layout)
    dtype = throughput.autocast_dtype(precision, CPU, "precision")
    if compiled and not throughput.compile_networks(model, CPU, model_block["kind"]):
        raise RuntimeError("torch.compile is unavailable here")
    optimizers = model.make_optimizers(
        partial(
            make_optimizer,
            training["optimizer"],
            lr=training["lr"],
            betas=tuple(training["betas"]),
            weight_decay=training["weight_decay"],
        )
    )

    def step() -> dict[str, float]:
        with throughput.autocast(CPU, dtype):
            return model.training_step(images, masks, optimizers)

    return step


def failure(error: Exception) -> str:
    """One line for a table cell."""
    line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"fails: {type(error).__name__}: {line[:80]}".replace("|", "/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("architectures", nargs="*", help=f"some of {list(ARCHITECTURES)} (default: all)")
    parser.add_argument("--steps", type=int, default=4, help="at most this many timed steps per timing")
    parser.add_argument("--tries", type=int, default=TRIES, help="timings per rate, the best kept")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes per architecture)")
    args = parser.parse_args()
    unknown = sorted(set(args.architectures) - set(ARCHITECTURES))
    if unknown:
        parser.error(f"unknown architectures {unknown}; known: {list(ARCHITECTURES)}")
    torch.set_num_threads(args.threads)
    params = environment_parameters(ENV)
    print(
        f"torch {torch.__version__}, {args.threads} threads, mkldnn bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}"
    )

    peaks = {
        "fp32": conv_peak(channels_last=False, precision="fp32"),
        "fp32 channels_last": conv_peak(channels_last=True, precision="fp32"),
    }
    options = OPTIONS | (COMPILED if args.compile else {})
    bf16_peak = partial(conv_peak, channels_last=True, precision="bf16")
    rows = []
    for name in args.architectures or ARCHITECTURES:
        block = params[name]
        before = bf16_peak()
        images, masks = batch(params["masks"]["generator"], block["training"]["batch_size"])
        per_image = flops(train_step(block, images, masks)) / len(images)
        fp32 = best_rate(train_step(block, images, masks), args.steps, args.tries) * len(images)
        cells, best = [], fp32
        for option in options.values():
            try:
                rate = best_rate(train_step(block, images, masks, *option), args.steps, args.tries) * len(images)
            except Exception as error:  # noqa: BLE001 - an option an architecture cannot take is a table cell
                cells.append(failure(error))
                continue
            cells.append(f"{rate:.1f} ({rate / fp32:.2f}x)")
            best = max(best, rate)
        after = bf16_peak()
        peak, achieved = max(before, after), per_image * fp32 / 1e9
        rows.append(
            [name, f"{per_image / 1e9:.3f} G", f"{fp32:.1f}", f"{achieved:.1f}", f"{before:.0f} / {after:.0f}"]
            + [f"{100 * achieved / peak:.1f} %"]
            + cells
            + [f"{100 * per_image * best / 1e9 / peak:.1f} %"]
        )
        print(f"  measured {name}", flush=True)

    header = ["architecture", "FLOP/img", "fp32 img/s", "GFLOP/s", "bf16 peak before / after", "% of bf16 peak"]
    header += [f"{option} img/s (x)" for option in options] + ["best % of bf16 peak"]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    for label, value in peaks.items():
        print(f"3x3 conv 64->64 peak, {label}: {value:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
