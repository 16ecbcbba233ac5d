"""The pyfunc model of a checkpoint: predictions of random-init tiny checkpoints, signature, logging, registry."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from pixelheal.inference.mlflow_model import CHECKPOINT, SIGNATURE, InpaintingPyfunc, pinned_requirements
from tests.inference.helpers import box_mask, write_checkpoint

SIZE = (20, 24)  # (H, W) of the request images: not the checkpoints' 16x16 training size


def loaded(checkpoint: Path, **model_config: str) -> InpaintingPyfunc:
    """The pyfunc model as MLflow loads it: `load_context` with the checkpoint artifact."""
    model = InpaintingPyfunc()
    model.load_context(SimpleNamespace(artifacts={CHECKPOINT: str(checkpoint)}, model_config=model_config))
    return model


def request(n: int, channels: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """`n` random images (N, H, W, C) and box masks (N, H, W) with 1 = hole."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *SIZE, channels), dtype=np.uint8)
    return {"image": images, "mask": np.stack([box_mask(*SIZE)] * n)}


@pytest.fixture
def unet(tmp_path) -> InpaintingPyfunc:
    return loaded(write_checkpoint(tmp_path / "unet_frm.pt"))


@pytest.fixture
def pixelcnn(tmp_path) -> InpaintingPyfunc:
    """A sampling architecture: its completions depend on the seed."""
    hparams = {"hidden": 8, "n_blocks": 1, "cond_layers": 1, "sampling": "sample", "temperature": 1.0}
    write_checkpoint(tmp_path / "pixelcnn.pt", arch="pixelcnn", hparams=hparams)
    return loaded(tmp_path / "pixelcnn.pt")


def test_the_signature_declares_images_and_masks_to_an_image_with_a_seed():
    assert SIGNATURE.inputs.input_names() == ["image", "mask"]
    assert [(s.type, s.shape) for s in SIGNATURE.inputs.inputs] == [
        (np.dtype(np.uint8), (-1, -1, -1, -1)),
        (np.dtype(np.uint8), (-1, -1, -1)),
    ]
    assert [(s.name, s.type, s.shape) for s in SIGNATURE.outputs.inputs] == [
        ("inpainted", np.dtype(np.uint8), (-1, -1, -1, -1))
    ]
    assert [(p.name, p.default) for p in SIGNATURE.params.params] == [("seed", 0)]


def test_prediction_keeps_every_known_pixel_and_fills_the_hole(unet):
    data = request(2)
    out = unet.predict(None, data)
    hole = data["mask"].astype(bool)
    assert out.shape == data["image"].shape and out.dtype == np.uint8
    assert np.array_equal(out[~hole], data["image"][~hole])
    assert (out[hole] != data["image"][hole]).any()


def test_a_mask_of_255_means_the_same_hole_as_a_mask_of_1(unet):
    data = request(1)
    assert np.array_equal(unet.predict(None, data), unet.predict(None, {**data, "mask": data["mask"] * 255}))


def test_each_image_of_a_batch_is_inpainted_as_it_would_be_alone(pixelcnn):
    data = request(3)
    batch = pixelcnn.predict(None, data, params={"seed": 5})
    for i in range(3):
        single = pixelcnn.predict(
            None, {"image": data["image"][i : i + 1], "mask": data["mask"][i : i + 1]}, {"seed": 5}
        )
        assert np.array_equal(batch[i : i + 1], single)
    other_seed = pixelcnn.predict(None, data, params={"seed": 6})
    hole = data["mask"].astype(bool)
    assert np.array_equal(other_seed[~hole], batch[~hole]) and not np.array_equal(other_seed, batch)


def test_a_grayscale_model_answers_in_its_own_mode(tmp_path):
    model = loaded(write_checkpoint(tmp_path / "gray.pt", in_channels=1))
    out = model.predict(None, request(1))
    assert out.shape == (1, *SIZE, 1)


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda d: {"image": d["image"]}, "model input: expected the arrays 'image'"),
        (lambda d: {**d, "image": d["image"][0]}, r"image: expected \(N, H, W, 1 or 3\) uint8, got \(20, 24, 3\)"),
        (lambda d: {**d, "mask": d["mask"][:, :10]}, r"mask: expected the images' \(N, H, W\) \(1, 20, 24\)"),
        (lambda d: {**d, "mask": np.zeros_like(d["mask"])}, r"mask\[0\]: mask is empty"),
    ],
)
def test_a_bad_request_is_refused_naming_the_input(unet, change, problem):
    with pytest.raises(MlflowException, match=problem) as error:
        unet.predict(None, change(request(1)))
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"  # served as a 400 answer


def test_an_unusable_device_is_named_as_the_model_config_key(tmp_path):
    with pytest.raises(ValueError, match="model_config.device: unknown device 'gpu0'"):
        loaded(write_checkpoint(tmp_path / "unet_frm.pt"), device="gpu0")


def test_requirements_are_the_declared_dependencies_pinned():
    pins = pinned_requirements()
    assert {"mlflow", "torch", "numpy", "pillow"} <= {p.split("==")[0] for p in pins}
    assert all("==" in p for p in pins) and not any(p.startswith("pytest") for p in pins)


@pytest.mark.slow  # an MLflow SQLite store (its migrations take a few seconds)
def test_a_logged_checkpoint_is_a_new_registered_version_of_its_run_that_loads_with_its_signature(tmp_path):
    import mlflow

    from pixelheal.inference.mlflow_model import log_inpainting_model

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("pixelheal", artifact_location=(tmp_path / "mlruns").as_uri())
        elsewhere = mlflow.create_experiment("elsewhere", artifact_location=(tmp_path / "elsewhere").as_uri())
        with mlflow.start_run(experiment_id=elsewhere) as parent:  # the active run is not the model's
            child = mlflow.MlflowClient().create_run(experiment, run_name="unet_frm").info.run_id
            checkpoint = write_checkpoint(tmp_path / "unet_frm.pt")
            versions = [
                log_inpainting_model(checkpoint, child, "pixelheal-unet_frm", {"git_commit": "abc"}, f"try {i}")
                for i in (1, 2)
            ]
            assert mlflow.active_run().info.run_id == parent.info.run_id  # the caller's run stays active
        assert mlflow.MlflowClient().get_run(child).info.status == "RUNNING"  # and the model's run stays open
        models = mlflow.MlflowClient().search_logged_models([experiment, elsewhere])
        assert [(m.experiment_id, m.source_run_id, str(m.status)) for m in models] == [(experiment, child, "READY")] * 2
        assert all(m.artifact_location.startswith((tmp_path / "mlruns").as_uri()) for m in models)
        assert [(v.version, v.run_id, v.tags, v.description) for v in versions] == [
            (1, child, {"git_commit": "abc"}, "try 1"),
            (2, child, {"git_commit": "abc"}, "try 2"),
        ]
        model = mlflow.pyfunc.load_model("models:/pixelheal-unet_frm/2")
        assert model.metadata.signature == SIGNATURE
        data = request(2)
        out = model.predict(data, params={"seed": 1})
        assert np.array_equal(out, loaded(checkpoint).predict(None, data, {"seed": 1}))
        with pytest.raises(MlflowException, match="Shape of input"):  # the signature is enforced
            model.predict({"image": data["image"][0], "mask": data["mask"][0]})
    finally:
        mlflow.set_tracking_uri(previous)
