"""Where the app finds trained checkpoints: the models folder, the MLflow Model Registry, and MLflow runs."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pixelheal.models.checkpoint import is_train_state_path

logger = logging.getLogger(__name__)

MAX_RUNS = 200  # newest runs searched for checkpoint artifacts; older ones are rarely wanted in a picker


@dataclass(frozen=True)
class CheckpointChoice:
    """One selectable checkpoint: a label for people and a key the app resolves to a local file."""

    label: str
    key: str  # "file:<path>", "models:/<registered name>/<version>" or "mlflow:<run_id>:<artifact path>"


def is_checkpoint_file(path: Path) -> bool:
    """A `*.pt` checkpoint, not the resume state training keeps beside one (see `train_state_path`)."""
    return path.suffix == ".pt" and not is_train_state_path(path)


def local_checkpoints(models_dir: str | Path) -> list[Path]:
    """Every checkpoint file directly in `models_dir`, sorted by name."""
    root = Path(models_dir)
    return sorted(p for p in root.glob("*.pt") if p.is_file() and is_checkpoint_file(p)) if root.is_dir() else []


def _store_exists(tracking_uri: str) -> bool:
    """False for a SQLite store whose file is missing: opening it would create an empty database."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).is_file()
    return True


def mlflow_checkpoints(tracking_uri: str) -> list[CheckpointChoice]:
    """Architecture runs (tag `architecture`) that logged a checkpoint artifact, newest first."""
    if not _store_exists(tracking_uri):
        return []
    try:
        from mlflow import MlflowClient  # imported here: listing local files must not pay for MLflow

        client = MlflowClient(tracking_uri=tracking_uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = (
            client.search_runs(experiments, max_results=MAX_RUNS, order_by=["attributes.start_time DESC"])
            if experiments
            else []
        )
        choices = []
        for run in runs:
            arch = run.data.tags.get("architecture")
            if arch is None:
                continue
            for artifact in client.list_artifacts(run.info.run_id):
                if not artifact.is_dir and is_checkpoint_file(Path(artifact.path)):
                    label = f"{arch} · MLflow run {run.info.run_name or ''} {run.info.run_id[:8]}".replace("  ", " ")
                    choices.append(CheckpointChoice(label, f"mlflow:{run.info.run_id}:{artifact.path}"))
        return choices
    except Exception as error:  # an unreachable server must not take the app down with it
        logger.warning("could not list MLflow runs at %s: %s", tracking_uri, error)
        return []


def registered_checkpoints(tracking_uri: str) -> list[CheckpointChoice]:
    """Versions of the registered `pixelheal-<arch>` models (`inference.mlflow_model`), newest first per model."""
    if not _store_exists(tracking_uri):
        return []
    try:
        from mlflow import MlflowClient

        from pixelheal.inference.mlflow_model import REGISTERED_PREFIX

        versions = MlflowClient(tracking_uri, registry_uri=tracking_uri).search_model_versions(
            f"name LIKE '{REGISTERED_PREFIX}%'", max_results=MAX_RUNS
        )
        versions = sorted(versions, key=lambda v: (v.name, -int(v.version)))
        return [
            CheckpointChoice(f"{v.name} v{v.version} · MLflow registry", f"models:/{v.name}/{v.version}")
            for v in versions
        ]
    except Exception as error:  # an unreachable server must not take the app down with it
        logger.warning("could not list registered models at %s: %s", tracking_uri, error)
        return []


def list_checkpoints(models_dir: str | Path, tracking_uri: str | None) -> list[CheckpointChoice]:
    """The local checkpoints first (the ones compared side by side), then registered versions, then MLflow runs."""
    local = [CheckpointChoice(f"{p.stem} · {p}", f"file:{p}") for p in local_checkpoints(models_dir)]
    return local + (registered_checkpoints(tracking_uri) + mlflow_checkpoints(tracking_uri) if tracking_uri else [])


def _registered_checkpoint(uri: str, tracking_uri: str, cache_dir: Path) -> Path:
    """The checkpoint file of a registered model version, its model downloaded into `cache_dir` once."""
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    from pixelheal.inference.mlflow_model import CHECKPOINT

    name, version = uri.removeprefix("models:/").split("/")
    # Resolved here: a `models:/` URI would be looked up in MLflow's global registry, not this one.
    source = MlflowClient(tracking_uri, registry_uri=tracking_uri).get_model_version_download_uri(name, version)
    # Cached by the model's own location: a name and version are reused by a store made anew.
    target = cache_dir / "registry" / hashlib.sha256(source.encode()).hexdigest()[:16]
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as staging:
            model_dir = download_artifacts(artifact_uri=source, dst_path=staging, tracking_uri=tracking_uri)
            os.replace(model_dir, target)  # the folder appears whole: an interrupted download is never used
        logger.info("downloaded %s to %s", uri, target)
    artifacts = Model.load(str(target / "MLmodel")).flavors["python_function"]["artifacts"]
    return target / artifacts[CHECKPOINT]["path"]


def resolve_choice(key: str, tracking_uri: str | None, cache_dir: str | Path) -> Path:
    """The local file of a choice; a registered model or an MLflow artifact is downloaded into `cache_dir` once."""
    kind, _, rest = key.partition(":")
    if kind == "file":
        return Path(rest)
    if kind not in ("mlflow", "models") or not tracking_uri:
        raise ValueError(f"unknown checkpoint choice {key!r}")
    if kind == "models":
        return _registered_checkpoint(key, tracking_uri, Path(cache_dir))
    run_id, _, artifact = rest.partition(":")
    target = Path(cache_dir) / run_id / artifact
    if not target.is_file():
        from mlflow import MlflowClient

        target.parent.mkdir(parents=True, exist_ok=True)
        MlflowClient(tracking_uri=tracking_uri).download_artifacts(run_id, artifact, str(Path(cache_dir) / run_id))
        logger.info("downloaded %s of MLflow run %s to %s", artifact, run_id, target)
    return target
