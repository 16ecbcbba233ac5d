"""GPU throughput of every architecture, with and without mixed precision: images/s and peak memory.

Run on demand on a CUDA machine: `python tests/benchmarks/bench_gpu.py [steps] [image_size] [batch]`
(defaults 300 steps, 64 px, batch 32). Each architecture (the embedded default hyper-parameters of
conf/base/parameters_train.yml) takes `steps` training steps on generated images and masks, once in
float32 and once under `torch.autocast(cuda, bfloat16)`: the training loop has no mixed-precision
setting yet, so this benchmark wraps the model's own `training_step` in autocast itself (bfloat16
needs no gradient scaler). Without CUDA it prints one line and exits.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

import torch
import yaml

from pixelheal.models import make_model
from pixelheal.training.optim import make_optimizer

PARAMETERS = Path(__file__).resolve().parents[2] / "conf" / "base" / "parameters_train.yml"
WARMUP = 10  # steps before timing: cuDNN autotuning and allocator growth


def architectures() -> dict[str, tuple[dict, dict]]:
    """(model block, training block) of every architecture namespace in the base parameters."""
    blocks = yaml.safe_load(PARAMETERS.read_text())
    return {name: (b["model"], b["training"]) for name, b in blocks.items() if not name.startswith("_")}


def bench(model_block: dict, training: dict, steps: int, size: int, batch: int, amp: bool) -> tuple[float, float]:
    """(images/s, peak GiB) of `steps` training steps."""
    torch.manual_seed(0)
    hparams = {k: v for k, v in model_block.items() if k != "kind"}
    model = make_model(model_block["kind"], in_channels=3, **hparams).cuda().train()
    build = partial(make_optimizer, training["optimizer"], lr=training["lr"], betas=tuple(training["betas"]))
    optimizers = model.make_optimizers(build)
    images = torch.rand(batch, 3, size, size, device="cuda")
    masks = (torch.rand(batch, 1, size, size, device="cuda") < 0.25).float()
    torch.cuda.reset_peak_memory_stats()
    for step in range(WARMUP + steps):
        if step == WARMUP:
            torch.cuda.synchronize()
            tick = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            model.training_step(images, masks, optimizers)
    torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - tick), torch.cuda.max_memory_allocated() / 2**30


def main() -> None:
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here; skipped")
        return
    given = [int(a) for a in sys.argv[1:4]]
    steps, size, batch = given + [300, 64, 32][len(given) :]
    print(f"{torch.cuda.get_device_name()}: {steps} steps, {size}x{size}, batch {batch}")
    print(f"{'architecture':<12} {'fp32 img/s':>11} {'fp32 GiB':>9} {'bf16 img/s':>11} {'bf16 GiB':>9} {'speed-up':>9}")
    for name, (model_block, training) in architectures().items():
        fp32, fp32_mem = bench(model_block, training, steps, size, batch, amp=False)
        bf16, bf16_mem = bench(model_block, training, steps, size, batch, amp=True)
        print(f"{name:<12} {fp32:11.1f} {fp32_mem:9.2f} {bf16:11.1f} {bf16_mem:9.2f} {bf16 / fp32:8.2f}x")


if __name__ == "__main__":
    main()
