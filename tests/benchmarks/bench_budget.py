"""Quality per training budget: one architecture trained for a fixed time, scored on its test holes against the fill.

Run on demand from the project root, after `kedro run --env=cifar10_cpu --pipelines=data_processing,masks,split`:
`python -m tests.benchmarks.bench_budget ARCH [--seconds S] [KEY=VALUE ...]` (`KEDRO_DISABLE_TELEMETRY=true`).
The architecture's `cifar10_cpu` block is trained as its `train_<arch>` node trains it (`training.loop.train`, with
the block's random masks, weight average and schedule) for `--seconds` (its `training.time_budget_s`, default 200),
on the images, masks and split those data pipelines wrote. Each KEY=VALUE replaces one key of the block, as
`kedro run --params=<arch>.KEY=VALUE` would (`model.hole_weight=20`, `training.lr=0.004`; the value is read as
YAML). The kept weights complete the fixed test holes, and one line gives their mean hole PSNR beside the
biharmonic fill's, the difference measured in that run, and the epochs that fitted: an ablation row at the seed,
budget and data of its neighbours. Nothing is written: no checkpoint, MLflow run or report, and no evaluation
beyond the hole PSNR. Run one at a time on an otherwise idle machine: the epochs that fit follow its speed.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch
import yaml

from pixelheal.evaluation.metrics import per_image_metrics
from pixelheal.evaluation.scoring import complete_images
from pixelheal.evaluation.summary import finite_mean
from pixelheal.lineage import Lineage
from pixelheal.masks import make_mask_generator
from pixelheal.models import make_model
from pixelheal.models.fills import biharmonic_fill
from pixelheal.pipelines.train.nodes import training_parameters
from pixelheal.training import train
from tests.conftest import PROJECT_ROOT, environment_config, environment_parameters

ENV = "cifar10_cpu"
# What each catalog entry's lineage record must show it was made with: this environment's blocks.
MADE_WITH = {
    "images": {"params:data_processing.source": ("data_processing", "source")},
    "masks": {"params:masks.generator": ("masks", "generator"), "params:masks.seed": ("masks", "seed")},
    "split_indices": {"params:split": ("split",)},
}
EVAL_BATCH = 256


def override(block: dict, assignment: str) -> None:
    """Set one dotted KEY=VALUE of an architecture's block in place (the value parsed as YAML)."""
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise SystemExit(f"bench_budget: expected KEY=VALUE (e.g. training.lr=0.004), got {assignment!r}")
    *path, last = key.split(".")
    for part in path:
        block = block.setdefault(part, {})
    block[last] = yaml.safe_load(value)


def _data_paths() -> dict[str, str]:
    """The file of each input (images, masks, split_indices), as this environment's catalog names it."""
    catalog = environment_config(ENV, "catalog")
    return {name: catalog[name]["filepath"] for name in MADE_WITH}


def _require_cifar10_cpu_data(params: dict, data: dict[str, str]) -> None:
    """Stop with one line unless the data files exist and their lineage records name this environment's blocks."""
    rerun = f"run `kedro run --env={ENV} --pipelines=data_processing,masks,split` first"
    lineage = Lineage(lambda name: PROJECT_ROOT / data[name])
    for name, path in data.items():
        record = lineage.record(name)
        if record is None:
            raise SystemExit(
                f"bench_budget: {path} is missing, or has no lineage record of its current content; {rerun}"
            )
        made = record.params
        for key, where in MADE_WITH[name].items():
            expected = params
            for part in where:
                expected = expected[part]
            if made.get(key) != expected:
                raise SystemExit(f"bench_budget: {path} was not made with {ENV}'s {'.'.join(where)}; {rerun}")


def hole_psnr(images: np.ndarray, masks: np.ndarray, completions: np.ndarray) -> float:
    """Mean hole PSNR (dB) of uint8 completions, as the test reports it (images without a hole skipped)."""
    return finite_mean(per_image_metrics(images / 255.0, completions / 255.0, masks.astype(np.float64))["psnr_hole"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("architecture", help="a block of conf/cifar10_cpu: unet_frm, unet_aspp, gan, ...")
    parser.add_argument("--seconds", type=float, default=200.0, help="the training budget (time_budget_s)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="keys of the block, e.g. training.lr=0.004")
    args = parser.parse_intermixed_args()  # KEY=VALUE may follow --seconds
    params = environment_parameters(ENV)
    if args.architecture not in params or "model" not in params[args.architecture]:
        raise SystemExit(f"bench_budget: conf/{ENV} has no architecture block {args.architecture!r}")
    data = _data_paths()
    _require_cifar10_cpu_data(params, data)
    block = copy.deepcopy(params[args.architecture])
    for assignment in args.overrides:
        override(block, assignment)
    block["training"]["time_budget_s"] = args.seconds
    where = f"{args.architecture}.training"
    images = np.load(PROJECT_ROOT / data["images"], mmap_mode="r")
    masks = np.load(PROJECT_ROOT / data["masks"], mmap_mode="r")
    split = json.loads((PROJECT_ROOT / data["split_indices"]).read_text())
    hparams = {k: v for k, v in block["model"].items() if k != "kind"} | {"in_channels": int(images.shape[1])}
    try:  # a mistyped key or value: its one-line message, naming it, instead of a traceback
        training = training_parameters(block["training"], where)
        torch.manual_seed(training.seed)
        model = make_model(block["model"]["kind"], where=f"{args.architecture}.model", **hparams)
    except ValueError as error:
        raise SystemExit(f"bench_budget: {error}") from None
    generator = (
        make_mask_generator(**training.random_masks, where=f"{where}.random_masks") if training.random_masks else None
    )
    tick = time.perf_counter()
    result = train(
        model,
        images,
        masks,
        np.asarray(split["train"]),
        np.asarray(split["val"]),
        training,
        mask_generator=generator,
        where=where,
    )
    seconds = time.perf_counter() - tick

    test = np.asarray(split["test"])
    test_images, test_masks = np.asarray(images[test]), np.asarray(masks[test])
    model.load_state_dict(result.best_state)
    device = torch.device("cpu")
    completions, _ = complete_images(model.eval().inpaint, test_images, test_masks, EVAL_BATCH, device)
    fills, _ = complete_images(biharmonic_fill, test_images, test_masks, EVAL_BATCH, device)
    model_db, fill_db = hole_psnr(test_images, test_masks, completions), hole_psnr(test_images, test_masks, fills)
    print(
        f"{args.architecture} {' '.join(args.overrides) or '(as conf/' + ENV + ')'}: "
        f"{len(result.history)} epochs in {seconds:.0f} s (best {result.best_epoch}), "
        f"test hole PSNR {model_db:.3f} dB, biharmonic {fill_db:.3f} dB, difference {model_db - fill_db:+.3f} dB"
    )


if __name__ == "__main__":
    main()
