"""Parameters as a run sees them: `--params` merged into every environment, and refused when they name nothing."""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

from pixelheal import settings
from pixelheal.config_loader import ProjectConfigLoader, UnknownEnvironmentError, merge_runtime
from pixelheal.data import check_source
from pixelheal.pipeline_registry import register_pipelines
from pixelheal.pipelines.parameters import check_parameters, check_runtime_parameters
from tests.conftest import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf"
ENVS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name != "base")  # local: the default


def _loader(env: str, runtime: dict[str, Any] | None = None, conf: Path = CONF) -> ProjectConfigLoader:
    return ProjectConfigLoader(str(conf), env=env, runtime_params=runtime, base_env="base", default_run_env="local")


def _parameters(env: str, runtime: dict[str, Any] | None = None) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _loader(env, runtime)["parameters"]


def _checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.yml")}


@pytest.mark.parametrize("env", ENVS)
def test_a_partial_runtime_override_merges_into_its_block_under_every_environment(env):
    configured = _parameters(env)["inpaint"]
    merged = _parameters(env, {"inpaint": {"model": "unet_frm"}})["inpaint"]
    assert merged == {**configured, "model": "unet_frm"}  # under cifar10_cpu it was {"model": "unet_frm"}


def _one_key_override(params: dict[str, Any], name: str) -> dict[str, Any]:
    """A runtime override of one leaf below the parameter `name`, with its configured value."""
    path, value = name.split("."), params
    for part in path:
        value = value[part]
    while isinstance(value, dict) and value:
        key = sorted(value)[0]
        path, value = [*path, key], value[key]
    override: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        override = {part: override}
    return override


@pytest.mark.parametrize("env", ENVS)
def test_every_pipeline_finds_its_parameters_under_every_environment(env):
    configured = _parameters(env)
    for name, pipeline in register_pipelines().items():
        read = sorted(n.removeprefix("params:") for n in pipeline.inputs() if n.startswith("params:"))
        for parameter in read:
            runtime = _one_key_override(configured, parameter)
            params = _parameters(env, runtime)
            check_runtime_parameters(runtime, configured, params)
            check_parameters(params, read)  # every read parameter exists and its declared block is valid
            assert params == configured, (name, parameter)


def test_switching_the_source_kind_drops_the_keys_of_the_configured_kind(tmp_path):
    runtime = {"data_processing": {"source": {"kind": "image_folder", "path": str(tmp_path)}}}
    params = _parameters("local", runtime)
    assert params["data_processing"]["source"] == {"kind": "image_folder", "path": str(tmp_path)}  # no n_images
    check_runtime_parameters(runtime, _parameters("local"), params)
    same_kind = _parameters("local", {"data_processing": {"source": {"kind": "sample", "n_images": 10}}})
    assert same_kind["data_processing"]["source"] == {
        "kind": "sample",
        "n_images": 10,
        "crop_size": [48, 128],
        "seed": 0,
    }


def test_merging_changes_neither_input():
    configured, runtime = {"a": {"kind": "x", "k": 1}, "b": [1]}, {"a": {"kind": "y"}}
    assert merge_runtime(configured, runtime) == {"a": {"kind": "y"}, "b": [1]}
    assert configured == {"a": {"kind": "x", "k": 1}, "b": [1]} and runtime == {"a": {"kind": "y"}}


@pytest.mark.parametrize(
    "env, runtime, problem",
    [
        (
            "local",
            {"nosuchns": {"training": {"epochs": 1}}},
            "nosuchns: unknown namespace in --params nosuchns.training.epochs; valid: ['compare', 'data_processing', ",
        ),
        ("local", {"evaluation": {"batchsize": 8}}, "evaluation.batchsize: unknown parameter in --params "),
        (
            "local",
            {"compare": {"workers": {"n": 2}}},
            "compare.workers.n: unknown parameter (--params); compare.workers",
        ),
        ("local", {"_training": {"epochs": 1}}, "_training.epochs: _training is a YAML anchor"),
        ("local", {"unet_frm": {"training": {"epoch": 1}}}, "unet_frm.training.epoch: unknown parameter; valid: "),
        (
            "local",
            {"unet_frm": {"training": {"time_budget_s": -5}}},
            "unet_frm.training.time_budget_s: must be positive",
        ),
        ("local", {"inpaint": {"modle": "unet_frm"}}, "inpaint.modle: unknown parameter; valid: "),
        ("local", {"split": {"fractions": {"tset": 0.1}}}, "split.fractions.tset: unknown parameter"),
        ("local", {"split": {"fractions": {"train": 0.9, "val": 0.1, "test": 0}}}, "split.fractions.test: must be"),
        ("local", {"data_processing": {"source": {"kind": "image_folder"}}}, "data_processing.source.path: "),
        ("cifar10", {"unet_frm": {"model": {"dilations": [1, 2]}}}, "unet_frm.model.dilations: unknown parameter"),
    ],
)
def test_a_runtime_parameter_that_names_nothing_or_breaks_its_block_is_refused(env, runtime, problem):
    configured = _parameters(env)
    with pytest.raises(ValueError) as error:  # whether or not the run reads the block: nothing has run yet
        check_runtime_parameters(runtime, configured, _parameters(env, runtime))
    assert str(error.value).startswith(problem) and "\n" not in str(error.value)


def test_a_new_optional_key_of_a_declared_block_is_accepted():
    configured = {"unet_frm": {"model": {"kind": "unet_frm", "widths": [4, 8]}}}
    runtime = {"unet_frm": {"model": {"hole_fill": "smooth"}}}  # not in conf/, but the model declares it
    check_runtime_parameters(runtime, configured, merge_runtime(configured, runtime))


def test_the_merged_source_block_builds_the_chosen_kind(tmp_path):
    params = _parameters("local", {"data_processing": {"source": {"kind": "image_folder", "path": str(tmp_path)}}})
    check_source(params["data_processing"]["source"])


def test_a_mistyped_environment_is_named_with_the_existing_ones(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    before = _checksums(conf)
    with pytest.raises(UnknownEnvironmentError) as error:
        _loader("cifar10_cpuu", conf=conf)
    assert str(error.value) == (
        "Unknown environment 'cifar10_cpuu' (--env): there is no conf/cifar10_cpuu folder; existing: "
        + ", ".join(sorted(p.name for p in conf.iterdir()))
    )
    assert _checksums(conf) == before and not (conf / "cifar10_cpuu").exists()


def test_kedro_mlflow_hooks_run_once_through_the_projects_subclass():
    (entry,) = [e for e in importlib.metadata.entry_points(group="kedro.hooks") if e.module.startswith("kedro_mlflow")]
    assert entry.dist.name in settings.DISABLE_HOOKS_FOR_PLUGINS  # the plugin's own instance is not registered
    assert sum(isinstance(hook, settings.TrackingHooks) for hook in settings.HOOKS) == 1
