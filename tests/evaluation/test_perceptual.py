"""Tests for PerceptualMetrics: random networks, unavailable weights, cached weights."""

import math
import socket

import pytest
import torch
import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception
from torchvision.models import alexnet
from torchvision.models.vgg import cfgs, make_layers

from pixelheal.evaluation import perceptual
from pixelheal.evaluation.perceptual import ALEXNET_FILE, INCEPTION_FILE, VGG16_FILE, PerceptualMetrics


def _batch(n: int = 4, c: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture()
def no_network(monkeypatch):
    """Fail loudly on any download attempt or socket connection."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(fidelity_inception, "load_state_dict_from_url", refuse)


@pytest.fixture()
def empty_hub(tmp_path, monkeypatch):
    """Point the torch hub cache at an empty folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # an earlier torch.hub.set_dir() would take precedence over TORCH_HOME
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    assert torch.hub.get_dir().startswith(str(tmp_path))
    return tmp_path / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def random_metrics() -> PerceptualMetrics:
    return PerceptualMetrics(lpips="random", fid="random")


def test_random_networks_give_finite_values(random_metrics):
    pm = random_metrics
    assert pm.available == {"lpips": None, "fid": None}
    real, fake = _batch(seed=0), _batch(seed=1)
    pm.update(real[:1], fake[:1])
    assert pm.fid() is None  # FID needs at least two images per side
    pm.update(real[1:], fake[1:])
    pm.update(real[:2], real[:2])  # identical pairs: LPIPS exactly 0
    lp = pm.lpips_per_image()
    assert lp.shape == (6,)
    assert torch.isfinite(lp).all()
    assert torch.all(lp[:4] > 0) and torch.all(lp[4:] == 0)
    fid = pm.fid()
    assert isinstance(fid, float) and math.isfinite(fid)


def test_random_lpips_grayscale_and_small_images():
    pm = PerceptualMetrics(lpips="random", fid="none")
    pm.update(_batch(2, c=1, size=28), _batch(2, c=1, size=28, seed=3))  # MNIST-sized
    lp = pm.lpips_per_image()
    assert lp.shape == (2,) and torch.isfinite(lp).all()
    assert pm.fid() is None


def test_none_is_unavailable(no_network):
    pm = PerceptualMetrics(lpips="none", fid="none")
    assert pm.available == {"lpips": "disabled in parameters", "fid": "disabled in parameters"}
    pm.update(_batch(2), _batch(2, seed=1))
    assert pm.lpips_per_image() is None and pm.fid() is None


def test_default_without_cached_weights_is_unavailable_and_offline(empty_hub, no_network):
    pm = PerceptualMetrics()
    assert ALEXNET_FILE in pm.available["lpips"]
    assert str(empty_hub) in pm.available["lpips"]
    assert INCEPTION_FILE == "weights-inception-2015-12-05-6726825d.pth"
    assert INCEPTION_FILE in pm.available["fid"]
    pm.update(_batch(2), _batch(2, seed=1))
    assert pm.lpips_per_image() is None and pm.fid() is None


def test_default_uses_weights_found_in_hub_cache(empty_hub, no_network):
    empty_hub.mkdir(parents=True)
    torch.manual_seed(1)
    backbone = alexnet(weights=None).state_dict()
    torch.save(backbone, empty_hub / ALEXNET_FILE)
    perceptual._random_inception_file(empty_hub)  # writes random_inception.pth
    (empty_hub / "random_inception.pth").rename(empty_hub / INCEPTION_FILE)
    pm = PerceptualMetrics()
    assert pm.available == {"lpips": None, "fid": None}
    # the lpips trunk holds exactly the cached AlexNet features
    assert torch.equal(pm._lpips_model.net.slice1[0].weight, backbone["features.0.weight"])
    assert torch.equal(getattr(pm._lpips_model.net.slice5, "10").bias, backbone["features.10.bias"])
    pm.update(_batch(2), _batch(2, seed=1))
    assert pm.lpips_per_image().shape == (2,)


def test_missing_or_corrupt_local_path_is_unavailable(tmp_path, no_network):
    missing = tmp_path / "nope.pth"
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    pm = PerceptualMetrics(lpips=str(missing), fid=str(corrupt))
    assert str(missing) in pm.available["lpips"] and "not found" in pm.available["lpips"]
    assert str(corrupt) in pm.available["fid"] and "could not load" in pm.available["fid"]


def test_random_vgg_lpips_gives_finite_values_and_zero_for_identical_pairs():
    pm = PerceptualMetrics(lpips="random", fid="none", lpips_net="vgg")
    assert type(pm._lpips_model.net).__name__ == "vgg16"
    real, fake = _batch(2), _batch(2, seed=1)
    pm.update(real, fake)
    pm.update(real, real)
    lp = pm.lpips_per_image()
    assert lp.shape == (4,) and torch.isfinite(lp).all()
    assert torch.all(lp[:2] > 0) and torch.all(lp[2:] == 0)


def test_vgg_without_cached_weights_is_unavailable_and_offline(empty_hub, no_network, caplog):
    pm = PerceptualMetrics(fid="none", lpips_net="vgg")
    assert VGG16_FILE == "vgg16-397923af.pth"
    assert VGG16_FILE in pm.available["lpips"] and str(empty_hub) in pm.available["lpips"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("lpips")]
    assert len(lines) == 1 and VGG16_FILE in lines[0] and "reported as None" in lines[0]
    pm.update(_batch(2), _batch(2, seed=1))
    assert pm.lpips_per_image() is None


def test_vgg_uses_the_torchvision_vgg16_found_in_hub_cache(empty_hub, no_network):
    empty_hub.mkdir(parents=True)
    torch.manual_seed(1)
    # torchvision's VGG16 state_dict without the (large, unused) classifier
    backbone = {f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}
    torch.save(backbone, empty_hub / VGG16_FILE)
    pm = PerceptualMetrics(fid="none", lpips_net="vgg")
    assert pm.available["lpips"] is None
    net = pm._lpips_model.net  # lpips cuts VGG16's features after relu1_2, 2_2, 3_3, 4_3 and 5_3
    assert torch.equal(net.slice1[0].weight, backbone["features.0.weight"])
    assert torch.equal(getattr(net.slice2, "7").weight, backbone["features.7.weight"])
    assert torch.equal(getattr(net.slice5, "28").bias, backbone["features.28.bias"])
    pm.update(_batch(2), _batch(2, seed=1))
    assert pm.lpips_per_image().shape == (2,)


def test_alexnet_weights_given_for_vgg_are_unavailable_not_a_crash(tmp_path, no_network):
    path = tmp_path / "alexnet.pth"
    torch.save(alexnet(weights=None).state_dict(), path)
    pm = PerceptualMetrics(lpips=str(path), fid="none", lpips_net="vgg")
    assert "could not load" in pm.available["lpips"] and str(path) in pm.available["lpips"]


def test_an_unknown_backbone_is_named():
    with pytest.raises(ValueError, match=r"^evaluation\.lpips_net: expected one of \['alex', 'vgg'\], got 'squeeze'"):
        PerceptualMetrics(lpips="none", fid="none", lpips_net="squeeze")
