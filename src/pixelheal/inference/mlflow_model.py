"""A trained checkpoint as an MLflow pyfunc model: logged, registered, served over REST.

Why pyfunc and not kedro-mlflow's `pipeline_ml_factory`: serving needs only "image + mask → inpainted
image", which `pixelheal.inference` already does for one checkpoint file. A `PythonModel` wrapping it
carries that file as its one artifact and is logged by the tracking hooks after `<arch>.train`, so the
training pipelines stay as they are; `pipeline_ml_factory` would bind a whole Kedro pipeline (and its
catalog of folders) to each training pipeline and log it only at the end of a `kedro run`, while the
`inpaint` pipeline reads folders, not arrays. The model is logged "from code" (`mlflow_entry.py`, with
the package's source beside it): loading it unpickles nothing and needs PixelHeal's dependencies, not
PixelHeal itself.

contract: `image` is (N, H, W, C) uint8 (C = 3, or 1 for grayscale models; other modes are converted
as `inpaint` converts them), `mask` is (N, H, W) uint8 with 1 or 255 = hole (the polarity of
`pixelheal.masks.files`); the output `inpainted` is (N, H, W, C) uint8 in the model's colour mode,
every known pixel equal to the input's. Images are inpainted one by one with the request's `seed`, so a
completion depends only on its image, mask and seed, never on the rest of the batch.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec
from packaging.requirements import Requirement

from pixelheal.inference.inpainter import (
    Inpainter,
    array_image,
    as_mask,
    image_array,
    inpaint_batch,
    load_inpainter,
)

CHECKPOINT = "checkpoint"  # the artifact key of the checkpoint file
REGISTERED_PREFIX = "pixelheal-"  # + the architecture namespace: the registered model's name
MODEL_NAME = "model"  # the logged model's name (its folder among the run's models)
REGISTERED_DESCRIPTION = "A PixelHeal inpainting architecture; each version is one training run's checkpoint."

_UINT8 = np.dtype(np.uint8)
SIGNATURE = ModelSignature(
    inputs=Schema([TensorSpec(_UINT8, (-1, -1, -1, -1), "image"), TensorSpec(_UINT8, (-1, -1, -1), "mask")]),
    outputs=Schema([TensorSpec(_UINT8, (-1, -1, -1, -1), "inpainted")]),
    params=ParamSchema([ParamSpec("seed", "long", 0)]),
)


class InpaintingPyfunc(mlflow.pyfunc.PythonModel):
    """`pixelheal.inference` behind MLflow's pyfunc interface; `model_config={"device": ...}` picks the device."""

    # Inputs are checked against the explicit SIGNATURE. MLflow would also infer one from type hints
    # and warn that a dict of arrays is no `list[...]`: `predict` has none, and this stops the check.
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        device = (context.model_config or {}).get("device", "cpu")
        self.inpainter = load_inpainter(context.artifacts[CHECKPOINT], device, where="model_config.device")

    def predict(self, context, model_input, params=None):
        try:
            return inpaint_arrays(self.inpainter, model_input, int((params or {}).get("seed", 0)))
        except ValueError as error:  # a bad request: a 400 answer naming the input, not a server error
            raise MlflowException.invalid_parameter_value(str(error)) from None


def _inputs(model_input: Any) -> tuple[np.ndarray, np.ndarray]:
    """The `image` (N, H, W, C) and `mask` (N, H, W) arrays of a request, checked against each other."""
    if not isinstance(model_input, dict) or set(model_input) != {"image", "mask"}:
        raise ValueError("model input: expected the arrays 'image' (N, H, W, C) and 'mask' (N, H, W)")
    images, masks = np.asarray(model_input["image"]), np.asarray(model_input["mask"])
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != _UINT8:
        raise ValueError(f"image: expected (N, H, W, 1 or 3) uint8, got {images.shape} {images.dtype}")
    if masks.shape != images.shape[:3]:
        raise ValueError(f"mask: expected the images' (N, H, W) {images.shape[:3]}, got {masks.shape}")
    return images, masks


def inpaint_arrays(inpainter: Inpainter, model_input: Any, seed: int = 0) -> np.ndarray:
    """The (N, H, W, C) uint8 completions of a request (see the module docstring)."""
    images, masks = _inputs(model_input)
    out = []
    for index, (image, mask) in enumerate(zip(images, masks)):
        size = (image.shape[1], image.shape[0])  # (W, H)
        binary = as_mask(mask, size, f"mask[{index}]")
        values = image_array(inpainter.convert(array_image(image.transpose(2, 0, 1))))  # (C, H, W)
        ((result,),) = inpaint_batch(inpainter, [values], [binary], 1, seed)
        out.append(result.transpose(1, 2, 0))  # (H, W, C)
    return np.stack(out)


def _pinned(requirement: Requirement) -> str:
    """`name[extras]==<installed version>`, or the requirement as declared when it is not installed."""
    try:
        version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        return str(requirement)
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return f"{requirement.name}{extras}=={version}"


def pinned_requirements() -> list[str]:
    """PixelHeal's declared dependencies pinned to the installed versions, so MLflow infers none."""
    declared = [Requirement(text) for text in importlib.metadata.requires("pixelheal") or []]
    return [_pinned(r) for r in declared if r.marker is None]  # those with a marker are extras (tests)


def log_inpainting_model(
    checkpoint: str | Path, run_id: str, registered_name: str, tags: dict[str, str], description: str
) -> ModelVersion:
    """Log `checkpoint` as a pyfunc model of run `run_id` and register it as a new version of `registered_name`.

    Logged into the given run, without switching MLflow's active run (the caller's stays active), so the
    run's status stays the caller's business.
    """
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    # Created first: left to `Model.log`, the model would land in the active (or default) experiment.
    model = mlflow.initialize_logged_model(
        MODEL_NAME, source_run_id=run_id, tags=tags, params=run.data.params, experiment_id=run.info.experiment_id
    )
    with warnings.catch_warnings():
        # SIGNATURE is explicit: no input example is needed (validating one would load and run the
        # model at every training).
        warnings.filterwarnings("ignore", ".*An input example was not provided", UserWarning)
        info = Model.log(
            None,  # artifact_path: deprecated for `name`, yet still positional
            name=MODEL_NAME,
            flavor=mlflow.pyfunc,
            run_id=run_id,
            model_id=model.model_id,
            python_model=str(Path(__file__).with_name("mlflow_entry.py")),
            artifacts={CHECKPOINT: str(checkpoint)},
            code_paths=[str(Path(__file__).parents[1])],  # the pixelheal package
            signature=SIGNATURE,
            pip_requirements=pinned_requirements(),
        )
    try:
        client.create_registered_model(registered_name, description=REGISTERED_DESCRIPTION)
    except MlflowException as error:  # registered by an earlier run (or a concurrent one)
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return client.create_model_version(
        registered_name, info.model_uri, run_id=run_id, tags=tags, description=description, model_id=info.model_id
    )
