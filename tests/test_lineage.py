"""Lineage: records beside persisted outputs, and the stop before a node reads inputs that do not belong together.

The hook runs in-process with a real DataCatalog and SequentialRunner on a miniature project:
data → images + metadata, masks ← images, split ← metadata, train ← images, masks, split (+ a
resume state it writes itself), evaluate ← checkpoint, images, masks, split.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset

import pixelheal.lineage as lineage_module
from pixelheal.datasets import NumpyArrayDataset, TrainStateDataset
from pixelheal.lineage import Lineage, Origin, content_stamp, fingerprint, sidecar_path
from pixelheal.lineage_hooks import LineageHooks, StaleInputError
from tests.conftest import checksums


def make_images(n: int, seed: int) -> tuple[np.ndarray, dict]:
    return np.random.default_rng(seed).integers(0, 256, (n, 4, 4, 3), dtype=np.uint8), {"n": n}


def make_masks(images: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(images.shape[:3]) < 0.3


def make_split(metadata: dict) -> dict:
    ids = list(range(metadata["n"]))
    return {"train": ids[:-2], "test": ids[-2:]}


def train(images: np.ndarray, masks: np.ndarray, split: dict, state: Path, epochs: int) -> dict:
    state.write_text(json.dumps({"epochs": epochs}))  # like the training loop, which writes its resume state itself
    return {"mean": float(images[split["train"]].mean() * masks[split["train"]].mean()), "epochs": epochs}


def evaluate(checkpoint: dict, images: np.ndarray, masks: np.ndarray, split: dict) -> dict:
    return {"score": checkpoint["mean"] - float(images[split["test"]].mean() * masks[split["test"]].mean())}


PIPELINES = {
    "data": Pipeline([Node(make_images, ["params:n", "params:seed"], ["images", "image_metadata"], name="ingest")]),
    "masks": Pipeline([Node(make_masks, ["images", "params:mask_seed"], "masks", name="precompute_masks")]),
    "split": Pipeline([Node(make_split, "image_metadata", "split_indices", name="split_images")]),
    "train": Pipeline(
        [
            Node(
                train, ["images", "masks", "split_indices", "train_state", "params:epochs"], "checkpoint", name="train"
            ),
            Node(evaluate, ["checkpoint", "images", "masks", "split_indices"], "metrics", name="evaluate"),
        ]
    ),
}

DEFAULTS = {"n": 8, "seed": 0, "mask_seed": 1, "epochs": 2}


def _catalog(root: Path, params: dict) -> DataCatalog:
    data = root / "data"
    catalog = DataCatalog(
        datasets={
            "images": NumpyArrayDataset(filepath=str(data / "images.npy")),
            "image_metadata": JSONDataset(filepath=str(data / "image_metadata.json")),
            "masks": NumpyArrayDataset(filepath=str(data / "masks.npy")),
            "split_indices": JSONDataset(filepath=str(data / "split_indices.json")),
            "train_state": TrainStateDataset(filepath=str(data / "model.pt")),
            "checkpoint": JSONDataset(filepath=str(data / "model.pt")),
            "metrics": JSONDataset(filepath=str(data / "metrics.json")),
        }
    )
    for name, value in {**DEFAULTS, **params}.items():
        catalog[f"params:{name}"] = value
    return catalog


def run(root: Path, *names: str, nodes: tuple[str, ...] = (), **params) -> None:
    """One `kedro run --pipelines=<names>` (or `--nodes=`) in its own process: a fresh hook and catalog."""
    pipeline = sum((PIPELINES[name] for name in names), Pipeline([]))
    pipeline = pipeline.only_nodes(*nodes) if nodes else pipeline
    catalog, hooks = _catalog(root, params), _create_hook_manager()
    hooks.register(LineageHooks(PIPELINES))
    hooks.hook.before_pipeline_run(run_params={}, pipeline=pipeline, catalog=catalog)
    SequentialRunner().run(pipeline, catalog, hooks)


def _record(root: Path, name: str) -> dict:
    return json.loads(sidecar_path(root / "data" / name).read_text())


@pytest.fixture
def project(tmp_path, monkeypatch):
    """Everything made once; the working folder is the project, as for `kedro run`."""
    monkeypatch.chdir(tmp_path)
    run(tmp_path, "data", "masks", "split", "train")
    return tmp_path


def test_each_persisted_output_records_what_it_was_made_from(project):
    assert set(_record(project, "masks.npy")["made_from"]) == {"images"}
    assert set(_record(project, "split_indices.json")["made_from"]) == {"image_metadata"}
    assert set(_record(project, "model.pt")["made_from"]) == {"images", "masks", "split_indices"}  # no resume state
    assert set(_record(project, "metrics.json")["made_from"]) == {"checkpoint", "images", "masks", "split_indices"}
    assert _record(project, "masks.npy")["params"] == {"params:mask_seed": 1}
    assert not sidecar_path(project / "data" / "model.state.pt").exists()


def test_rerunning_unchanged_keeps_every_fingerprint_and_downstream_runs(project):
    names = ("images.npy", "masks.npy", "split_indices.json", "model.pt")
    before = {name: _record(project, name)["fingerprint"] for name in names}
    run(project, "data", "masks", "split")
    assert {name: _record(project, name)["fingerprint"] for name in names} == before
    run(project, "train", nodes=("evaluate",))


def test_other_images_stop_the_training_with_one_line_before_anything_is_written(project):
    run(project, "data", n=6)
    before = checksums(project)
    with pytest.raises(StaleInputError) as error:
        run(project, "train")
    assert str(error.value) == (
        "masks was made from other images than data/images.npy holds now: rerun `kedro run --pipelines=masks,split`"
    )
    assert checksums(project) == before


def test_the_rerun_named_in_the_message_makes_the_inputs_belong_together_again(project):
    run(project, "data", seed=5)
    run(project, "masks", "split")
    with pytest.raises(StaleInputError, match=r"^checkpoint was made from other images than data/images\.npy holds"):
        run(project, "train", nodes=("evaluate",))
    run(project, "train")


def test_evaluating_alone_on_changed_images_names_every_pipeline_to_rerun(project):
    run(project, "data", n=6)
    with pytest.raises(StaleInputError) as error:
        run(project, "train", nodes=("evaluate",))
    assert str(error.value) == (
        "checkpoint was made from other images than data/images.npy holds now: "
        "rerun `kedro run --pipelines=masks,split,train`"
    )


def test_a_stale_input_found_mid_run_stops_before_its_node(project):
    checkpoint = hashlib.sha256((project / "data" / "model.pt").read_bytes()).digest()
    with pytest.raises(StaleInputError, match=r"^masks was made from other images"):
        run(project, "data", "train", n=6)  # data is rewritten first; training must not read the old masks
    assert hashlib.sha256((project / "data" / "model.pt").read_bytes()).digest() == checkpoint


def test_a_file_replaced_behind_its_record_counts_as_other_data(project):
    np.save(project / "data" / "images.npy", np.zeros((8, 4, 4, 3), np.uint8))  # e.g. killed before its record
    with pytest.raises(StaleInputError, match=r"^masks was made from other images than data/images\.npy holds now"):
        run(project, "train")


def test_outputs_without_records_are_not_an_error(project):
    for sidecar in (project / "data").glob("*.lineage.json"):
        sidecar.unlink()  # as made before lineage existed
    run(project, "train")
    assert sidecar_path(project / "data" / "model.pt").is_file()


def test_a_missing_upstream_record_is_not_an_error_while_the_file_is_the_same(project):
    sidecar_path(project / "data" / "images.npy").unlink()
    run(project, "train")


def test_an_unreadable_record_is_ignored_with_a_warning(project, caplog):
    sidecar_path(project / "data" / "masks.npy").write_text("{not json")
    run(project, "train")
    assert "Ignoring the unreadable lineage record" in caplog.text


def test_a_stop_mid_run_ends_the_open_mlflow_run_failed_with_the_line(project, monkeypatch):
    stack, calls = ["run", "run"], []  # kedro-mlflow can have its run on MLflow's stack twice
    fake = SimpleNamespace(
        active_run=lambda: stack[-1] if stack else None,
        set_tag=lambda key, value: calls.append((key, value)),
        end_run=lambda status: calls.append(("end", status)) or stack.pop(),
    )
    monkeypatch.setattr("pixelheal.lineage_hooks.mlflow", fake)
    with pytest.raises(StaleInputError) as error:
        run(project, "data", "train", n=6)
    assert calls == [("pixelheal.error", str(error.value)), ("end", "FAILED"), ("end", "FAILED")]


def test_the_fingerprint_depends_on_parameters_and_inputs_only():
    images = {"images": Origin("abc", "sha256:1")}
    assert fingerprint("masks", "masks", {"seed": 1}, images) == fingerprint("masks", "masks", {"seed": 1}, images)
    assert fingerprint("masks", "masks", {"seed": 1}, images) != fingerprint("masks", "masks", {"seed": 2}, images)
    assert fingerprint("masks", "masks", {"seed": 1}, images) != fingerprint(
        "masks", "masks", {"seed": 1}, {"images": Origin("abd", "sha256:1")}
    )


def test_large_files_are_stamped_by_samples_that_see_a_change(tmp_path, monkeypatch):
    monkeypatch.setattr(lineage_module, "_FULL_HASH_LIMIT", 4 << 20)
    path = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 8 << 20, dtype=np.uint8).tobytes())
    path.write_bytes(data)
    stamp = content_stamp(path)
    assert stamp.startswith("sampled-sha256:") and content_stamp(path) == stamp
    data[len(data) // 2] ^= 0xFF  # inside a sampled block: 64 blocks of 1 MiB cover all of an 8 MiB file
    path.write_bytes(data)
    assert content_stamp(path) != stamp


def test_records_of_files_that_are_not_tracked_are_not_read(tmp_path):
    assert Lineage(lambda name: None).stale(["images"]) is None
