"""`kedro viz build` on a tiny project copy: every pipeline is listed, nodes are named, datasets carry their layer."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from pixelheal.pipeline_registry import register_pipelines
from tests.pipelines.kedro_project import kedro, make_project

pytestmark = pytest.mark.slow

LAYER_ORDER = ["raw", "intermediate", "primary", "feature", "model_input", "models", "model_output", "reporting"]


@pytest.fixture(scope="module")
def viz(tmp_path_factory):
    """The project root after `kedro viz build`, with its main API payload."""
    root = make_project(tmp_path_factory.mktemp("viz"))
    result = kedro(root, "viz", "build")
    assert result.returncode == 0, result.stderr[-3000:]
    return root, json.loads((root / "build" / "api" / "main").read_text())


def catalog_layer(name: str, catalog: dict) -> str | None:
    """The kedro-viz layer the catalog gives dataset `name`, resolving `{placeholder}` factory patterns."""
    for key, entry in catalog.items():
        pattern = "[^.]+".join(re.escape(part) for part in re.split(r"\{\w+\}", key))
        if re.fullmatch(pattern, name):
            return entry.get("metadata", {}).get("kedro-viz", {}).get("layer")
    return None


def test_build_lists_every_registered_pipeline(viz):
    root, main = viz
    assert sorted(p["id"] for p in main["pipelines"]) == sorted(register_pipelines())
    for name in register_pipelines():
        assert (root / "build" / "api" / "pipelines" / name).is_file()


def test_inpaint_pipeline_is_built_with_its_node(viz):
    root, _ = viz
    inpaint = json.loads((root / "build" / "api" / "pipelines" / "inpaint").read_text())
    assert [n["name"] for n in inpaint["nodes"] if n["type"] == "task"] == ["inpaint_images"]


def test_task_nodes_have_readable_names(viz):
    _, main = viz
    names = {n["name"] for n in main["nodes"] if n["type"] == "task"}
    assert names and all(re.fullmatch(r"[a-z_]+", name) for name in names), names  # not Kedro's `func([inputs]) -> ...`


def test_every_dataset_carries_the_layer_of_the_catalog(viz):
    root, main = viz
    catalog = yaml.safe_load((root / "conf" / "base" / "catalog.yml").read_text())
    datasets = [n for n in main["nodes"] if n["type"] == "data"]
    assert {"images", "masks", "split_indices", "unet_aspp.checkpoint", "comparison_table"} <= {
        n["name"] for n in datasets
    }
    for node in datasets:
        assert node["layer"] is not None and node["layer"] == catalog_layer(node["name"], catalog), node["name"]
    # viz orders the layers along the data flow, which is the order of the numbered data/ folders
    assert {"primary", "feature", "model_input", "models", "reporting"} <= set(main["layers"])
    assert main["layers"] == [layer for layer in LAYER_ORDER if layer in main["layers"]]
