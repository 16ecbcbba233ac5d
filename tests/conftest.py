"""Shared test setup: no telemetry, paths to the shared real data (skipped when absent), and small helpers."""

import hashlib
import os
import warnings
from pathlib import Path

import pytest
import torch
from kedro.config import OmegaConfigLoader

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CIFAR_SAMPLE = PROJECT_ROOT.parent / "shared" / "datasets" / "cifar10_sample"


@pytest.fixture
def cifar_sample() -> Path:
    """The shared CIFAR-10 sample (train/ and test/ class folders)."""
    if not (CIFAR_SAMPLE / "train").is_dir():
        pytest.skip(f"shared CIFAR-10 sample not found at {CIFAR_SAMPLE}")
    return CIFAR_SAMPLE


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests use tiny tensors, which gain nothing from intra-op threads; on a busy machine they contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path: what "no existing file changed" compares."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def environment_config(env: str, kind: str) -> dict:
    """One kind of configuration ("parameters", "catalog") of an environment in conf/, as `kedro run --env=<env>` reads it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env=env)[kind]


def environment_parameters(env: str) -> dict:
    """The parameters of a configuration environment in conf/, as `kedro run --env=<env>` reads them."""
    return environment_config(env, "parameters")
