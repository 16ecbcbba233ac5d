"""`device:` parameters: auto picks what exists; an unknown or missing device is one line naming the parameter."""

import pytest
import torch

from pixelheal.devices import resolve_device


@pytest.fixture
def no_gpu(monkeypatch):
    """A machine without CUDA or MPS, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_falls_back_to_the_cpu(no_gpu):
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu", where="unet_frm.training.device") == torch.device("cpu")


@pytest.mark.parametrize(
    "device, problem",
    [
        ("cuda", "device 'cuda' is not available: no CUDA GPU found; use auto or cpu"),
        ("cuda:1", "device 'cuda:1' is not available: no CUDA GPU found; use auto or cpu"),
        ("mps", "device 'mps' is not available: no Apple MPS device found; use auto or cpu"),
    ],
)
def test_a_missing_device_is_one_line_naming_the_parameter(no_gpu, device, problem):
    with pytest.raises(ValueError) as error:
        resolve_device(device, where="unet_frm.training.device")
    assert str(error.value) == f"unet_frm.training.device: {problem}"


def test_a_gpu_index_beyond_the_machines_gpus_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(
        ValueError, match=r"^inpaint\.device: device 'cuda:3' is not available: this machine has 1 CUDA"
    ):
        resolve_device("cuda:3", where="inpaint.device")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", ""])
def test_an_unknown_device_is_named(device):
    with pytest.raises(ValueError) as error:
        resolve_device(device, where="evaluation.device")
    assert (
        str(error.value)
        == f"evaluation.device: unknown device {device!r}; expected auto, cpu, cuda, cuda:<index> or mps"
    )
