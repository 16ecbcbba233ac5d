"""Every configuration environment builds: its source kind, mask generator, models and training config."""

from __future__ import annotations

import pytest

from pixelheal.data import SOURCE_KINDS
from pixelheal.masks import make_mask_generator
from pixelheal.models import ARCHITECTURES, make_model
from pixelheal.pipelines.train.nodes import training_parameters
from tests.conftest import PROJECT_ROOT, environment_parameters

ENVS = sorted(p.name for p in (PROJECT_ROOT / "conf").iterdir() if p.is_dir() and p.name not in ("base", "local"))


def test_the_documented_environments_exist():
    assert {"cifar10", "cifar10_cpu", "celeba", "mnist", "paired64", "cartoon"} <= set(ENVS)


@pytest.mark.parametrize("env", ["base", *ENVS])
def test_environment_builds(env, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # DeepLabV3 weights: absent, so the fallback is used
    params = environment_parameters(env)
    assert params["data_processing"]["source"]["kind"] in SOURCE_KINDS
    channels = 1 if params["data_processing"]["preprocessing"]["color_mode"] == "L" else 3
    generator = dict(params["masks"]["generator"])
    if generator["kind"] != "from_pairs":
        make_mask_generator(**generator)
    for arch in ARCHITECTURES:
        block = params[arch]
        make_model(
            block["model"]["kind"], in_channels=channels, **{k: v for k, v in block["model"].items() if k != "kind"}
        )
        training = training_parameters(block["training"], f"{arch}.training")
        if training.random_masks:
            make_mask_generator(**training.random_masks)
        assert training.state_path is None  # the resume state is derived from the checkpoint's path


@pytest.mark.parametrize(
    "block, problem",
    [
        (
            {"epoch": 2},
            r"^unet_frm\.training\.epoch: unknown parameter; valid: \[.*'random_masks', 'resume', 'state_path'",
        ),
        ({"random_masks": "box"}, r"^unet_frm\.training\.random_masks: expected a mapping or null, got 'box'"),
        ({"resume": "yes"}, r"^unet_frm\.training\.resume: expected true or false"),
        ({"state_path": 3}, r"^unet_frm\.training\.state_path: expected a string or null"),
    ],
)
def test_the_training_block_is_declared_once(block, problem):
    with pytest.raises(ValueError, match=problem):
        training_parameters(block, "unet_frm.training")


def test_the_training_block_keeps_the_loop_settings_and_the_node_extras():
    params = training_parameters(
        {"epochs": 3, "betas": [0.5, 0.9], "random_masks": {"kind": "box"}, "resume": True}, "gan.training"
    )
    assert (params.epochs, params.betas, params.random_masks, params.resume, params.state_path) == (
        3,
        (0.5, 0.9),
        {"kind": "box"},
        True,
        None,
    )
