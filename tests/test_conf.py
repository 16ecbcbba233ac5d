"""Every configuration environment builds: its source kind, mask generator, models and training config."""

from __future__ import annotations

import warnings

import pytest
from kedro.config import OmegaConfigLoader

from pixelheal.data import SOURCE_KINDS
from pixelheal.masks import make_mask_generator
from pixelheal.models import ARCHITECTURES, make_model
from pixelheal.pipelines.train.nodes import _train_config
from tests.conftest import PROJECT_ROOT

ENVS = sorted(p.name for p in (PROJECT_ROOT / "conf").iterdir() if p.is_dir() and p.name not in ("base", "local"))


def _parameters(env: str) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env=env)
        return loader["parameters"]


def test_the_documented_environments_exist():
    assert {"cifar10", "cifar10_cpu", "celeba", "mnist", "paired64", "cartoon"} <= set(ENVS)


@pytest.mark.parametrize("env", ["base", *ENVS])
def test_environment_builds(env, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # DeepLabV3 weights: absent, so the fallback is used
    params = _parameters(env)
    assert params["data_processing"]["source"]["kind"] in SOURCE_KINDS
    channels = 1 if params["data_processing"]["preprocessing"]["color_mode"] == "L" else 3
    generator = dict(params["masks"]["generator"])
    if generator["kind"] != "from_pairs":
        make_mask_generator(**generator)
    for arch in ARCHITECTURES:
        block = params[arch]
        make_model(block["model"]["kind"], in_channels=channels, **{k: v for k, v in block["model"].items() if k != "kind"})
        _train_config(block["training"])
        if block["training"].get("random_masks"):
            make_mask_generator(**block["training"]["random_masks"])
        assert block["training"]["state_path"] == f"data/06_models/{arch}.state.pt"
