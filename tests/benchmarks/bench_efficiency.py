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
convolution 64->64 (batch 64, 32x32, forward and backward). On a shared machine what the chip delivers drifts by
half within minutes, and a disturbed timing of a few seconds reads a quarter low, so every rate is the best of
`--tries` timings (default TRIES), and the timings are interleaved: each round times the bf16 peak, then the
architecture without options, then with each option, so that every column sees the same stretches of the run. An
architecture's "% of bf16 peak" relates its achieved GFLOP/s to the peak timed in its own rounds: the best the chip
showed beside it. Each timing runs two warm-up steps, then up to `--steps` steps (fewer when one step is slow:
about SECONDS per timing, one warm-up and at least one step for steps over SECONDS / 3); the peak's, PEAK_STEPS.
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
TRIES = 3  # interleaved rounds: timings per rate, the best kept
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


def best_rates(timings: dict[str, Callable[[], float]], tries: int) -> dict[str, float | Exception]:
    """The best rate of each timing over `tries` rounds, each round calling every timing once, in order.

    A timing that raises keeps its error, and is not called again.
    """
    rates: dict[str, float | Exception] = dict.fromkeys(timings, 0.0)
    for _ in range(tries):
        for name, timing in timings.items():
            if not isinstance(rates[name], Exception):
                try:
                    rates[name] = max(rates[name], timing())
                except Exception as error:  # noqa: BLE001 - an option an architecture cannot take is a table cell
                    rates[name] = error
    return rates


def flops(step: Callable[[], object]) -> int:
    """FLOPs of one call of `step`, backward included."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def conv_peak(channels_last: bool, precision: str) -> tuple[Callable[[], float], int]:
    """A timing of a 3x3 convolution 64->64 on a batch of 64 32x32 maps, forward and backward, and its FLOPs."""
    torch.manual_seed(0)
    fmt = throughput.memory_format(channels_last)
    conv = nn.Conv2d(64, 64, 3, padding=1).to(memory_format=fmt)
    x = torch.randn(64, 64, SIZE, SIZE).to(memory_format=fmt).requires_grad_()
    dtype = throughput.autocast_dtype(precision, CPU, "precision")

    def step() -> None:
        with throughput.autocast(CPU, dtype):
            y = conv(x)
        y.sum().backward()

    return partial(steps_per_second, step, PEAK_STEPS, math.inf), flops(step)


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

    peaks = {}
    for label, channels_last in (("fp32", False), ("fp32 channels_last", True)):
        timing, peak_flops = conv_peak(channels_last, "fp32")
        peaks[label] = max(timing() for _ in range(args.tries)) * peak_flops / 1e9
    bf16_peak, bf16_peak_flops = conv_peak(channels_last=True, precision="bf16")
    options = OPTIONS | (COMPILED if args.compile else {})
    rows = []
    for name in args.architectures or ARCHITECTURES:
        block = params[name]
        images, masks = batch(params["masks"]["generator"], block["training"]["batch_size"])
        per_image = flops(train_step(block, images, masks)) / len(images)
        timings = {"peak": bf16_peak, "fp32": partial(steps_per_second, train_step(block, images, masks), args.steps)}
        failed: dict[str, Exception] = {}
        for option, settings in options.items():
            try:
                timings[option] = partial(steps_per_second, train_step(block, images, masks, *settings), args.steps)
            except Exception as error:  # noqa: BLE001 - an option an architecture cannot take is a table cell
                failed[option] = error
        rates = best_rates(timings, args.tries) | failed
        peak, fp32 = rates.pop("peak"), rates.pop("fp32")
        for error in (peak, fp32):
            if isinstance(error, Exception):
                raise error
        peak, fp32 = peak * bf16_peak_flops / 1e9, fp32 * len(images)
        cells, best = [], fp32
        for option in options:
            rate = rates[option]
            if isinstance(rate, Exception):
                cells.append(failure(rate))
                continue
            rate *= len(images)
            cells.append(f"{rate:.1f} ({rate / fp32:.2f}x)")
            best = max(best, rate)
        achieved = per_image * fp32 / 1e9
        rows.append(
            [name, f"{per_image / 1e9:.3f} G", f"{fp32:.1f}", f"{achieved:.1f}", f"{peak:.0f}"]
            + [f"{100 * achieved / peak:.1f} %"]
            + cells
            + [f"{100 * per_image * best / 1e9 / peak:.1f} %"]
        )
        print(f"  measured {name}", flush=True)

    header = ["architecture", "FLOP/img", "fp32 img/s", "GFLOP/s", "bf16 peak GFLOP/s", "% of bf16 peak"]
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
