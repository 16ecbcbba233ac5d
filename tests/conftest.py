"""Shared test setup: no telemetry, and paths to the shared real data (skipped when absent)."""

import os
from pathlib import Path

import pytest
import torch

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
