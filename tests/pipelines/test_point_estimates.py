"""Point-estimate keys in every method's metrics: architectures (evaluate_model) and baselines (score_baselines)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelheal.evaluation.summary import POINT_KEYS, summary_keys
from pixelheal.models import make_model
from pixelheal.models.autoregressive import AutoregressiveInpainter
from pixelheal.models.checkpoint import Checkpoint
from pixelheal.pipelines.compare.nodes import compare_methods, score_baselines
from pixelheal.pipelines.train.nodes import evaluate_model

PIXELCNN = {"kind": "pixelcnn", "hidden": 8, "n_blocks": 1, "cond_layers": 1}
UNET = {"kind": "unet_frm", "widths": [4, 8]}
EVALUATION = {"batch_size": 4, "device": "cpu", "grid_images": 2, "samples_per_image": 1, "point_samples": 2}
EVALUATION |= {"seed": 0, "lpips": "none", "lpips_net": "alex", "fid": "none"}
SPLITS = {"train": [0], "val": [1], "test": list(range(2, 8))}
SIZE = 12  # the smallest side SSIM takes is 11


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    masks = np.zeros((8, 1, SIZE, SIZE), np.uint8)
    masks[:, :, 3:7, 2:9] = 1
    return rng.integers(0, 256, (8, 3, SIZE, SIZE), dtype=np.uint8), masks


def _checkpoint(model: dict) -> Checkpoint:
    """An untrained model's checkpoint: what is scored does not depend on how well it learnt."""
    hparams = {k: v for k, v in model.items() if k != "kind"} | {"in_channels": 3}
    torch.manual_seed(0)
    net = make_model(model["kind"], **hparams)
    return Checkpoint(
        arch=model["kind"],
        hparams=hparams,
        model=net.state_dict(),
        epoch=1,
        metrics={},
        history=[{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0, "seconds": 1.0}],
        training={},
        image_size=(SIZE, SIZE),
    )


def _metrics(data, model: dict, evaluation: dict = EVALUATION) -> dict:
    return evaluate_model(_checkpoint(model), *data, SPLITS, evaluation, model)[0]["metrics"]


@pytest.fixture(scope="module")
def results(data):
    baselines = score_baselines(*data, SPLITS, ["telea", "biharmonic"], 1, EVALUATION)
    return {"unet_frm": _metrics(data, UNET), "pixelcnn": _metrics(data, PIXELCNN)} | {
        method: result["metrics"] for method, result in baselines.items()
    }


def test_every_method_reports_the_same_keys_point_keys_included(results):
    for metrics in results.values():
        assert list(metrics) == [*summary_keys(), *(["test_nll_bpd"] if "test_nll_bpd" in metrics else [])]
        assert all(metrics[key] is not None for key in POINT_KEYS)


@pytest.mark.parametrize("method", ["unet_frm", "baseline:telea", "baseline:biharmonic"])
def test_a_deterministic_method_reports_its_one_completion_as_its_point_estimate(results, method):
    for key in POINT_KEYS:
        assert results[method][key] == results[method][key.replace("test_point_", "test_")]


def test_a_sampling_architecture_scores_the_mean_of_its_samples_the_same_on_every_rerun(data, results):
    metrics = results["pixelcnn"]
    assert metrics["test_point_psnr_hole"] != metrics["test_psnr_hole"]
    rerun = _metrics(data, PIXELCNN)
    assert {key: rerun[key] for key in POINT_KEYS} == {key: metrics[key] for key in POINT_KEYS}
    assert (
        _metrics(data, PIXELCNN, EVALUATION | {"point_samples": 3})["test_point_psnr_hole"]
        != (metrics["test_point_psnr_hole"])
    )


def test_the_comparison_table_shows_the_point_columns(results):
    table, markdown, _ = compare_methods(
        {k: {"method": k, "metrics": v} for k, v in results.items() if k.startswith("baseline:")},
        *({"method": k, "metrics": v} for k, v in results.items() if not k.startswith("baseline:")),
    )
    assert set(POINT_KEYS) <= set(table.columns)
    assert table.loc["pixelcnn", "test_point_psnr_hole"] == results["pixelcnn"]["test_point_psnr_hole"]
    assert "test_point_psnr_hole" in markdown.splitlines()[0]


@pytest.mark.parametrize("bad", [0, -2, 1.5, "4", True, None])
def test_a_bad_point_samples_is_refused_in_one_line_naming_it(data, bad):
    with pytest.raises(ValueError, match=r"^evaluation\.point_samples: expected an integer of at least 1") as error:
        _metrics(data, UNET, EVALUATION | {"point_samples": bad})
    assert "\n" not in str(error.value)


def test_a_missing_point_samples_is_refused_naming_it(data):
    evaluation = {k: v for k, v in EVALUATION.items() if k != "point_samples"}
    with pytest.raises(ValueError, match=r"^evaluation\.point_samples: .* got None$"):
        _metrics(data, UNET, evaluation)


def test_point_samples_per_architecture_give_each_its_own_count_and_the_default_to_the_others(data, results):
    per_architecture = _metrics(data, PIXELCNN, EVALUATION | {"point_samples": {"default": 2, "pixelcnn": 3}})
    three = _metrics(data, PIXELCNN, EVALUATION | {"point_samples": 3})
    assert {key: per_architecture[key] for key in POINT_KEYS} == {key: three[key] for key in POINT_KEYS}
    by_default = _metrics(data, PIXELCNN, EVALUATION | {"point_samples": {"default": 2, "rowrnn": 8}})
    assert {key: by_default[key] for key in POINT_KEYS} == {key: results["pixelcnn"][key] for key in POINT_KEYS}


@pytest.mark.parametrize(
    ("point_samples", "message"),
    [
        ({"default": 2, "pixelcnn": 0}, r"^evaluation\.point_samples\.pixelcnn: expected an integer of at least 1"),
        ({"rowrnn": 8}, r"^evaluation\.point_samples: gives no count for 'pixelcnn' and no default$"),
        ({"default": 2, "pixelcnnn": 4}, r"^evaluation\.point_samples: names no architecture \['pixelcnnn'\]"),
    ],
)
def test_a_bad_point_samples_mapping_is_refused_naming_the_entry(data, point_samples, message):
    with pytest.raises(ValueError, match=message):
        _metrics(data, PIXELCNN, EVALUATION | {"point_samples": point_samples})


def test_a_sampling_architectures_one_sample_is_the_first_point_draw_not_another_pass(data, results, monkeypatch):
    def no_extra_pass(*args, **kwargs):
        raise AssertionError("a sampling architecture was run again for its one-sample scores")

    monkeypatch.setattr(AutoregressiveInpainter, "inpaint", no_extra_pass)
    metrics, scored = _metrics(data, PIXELCNN), [key.replace("test_point_", "test_") for key in POINT_KEYS]
    assert {key: metrics[key] for key in scored} == {key: results["pixelcnn"][key] for key in scored}
    assert _metrics(data, PIXELCNN, EVALUATION | {"seed": 1})["test_psnr_hole"] != results["pixelcnn"]["test_psnr_hole"]


def test_a_greedy_sampler_scores_its_greedy_completion_and_still_averages_draws(data):
    greedy = PIXELCNN | {"sampling": "greedy"}
    metrics, reseeded = _metrics(data, greedy), _metrics(data, greedy, EVALUATION | {"seed": 1})
    assert metrics["test_psnr_hole"] == reseeded["test_psnr_hole"]  # the arg-max draws nothing
    assert metrics["test_point_psnr_hole"] != reseeded["test_point_psnr_hole"]
