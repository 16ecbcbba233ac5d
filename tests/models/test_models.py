"""Every registered architecture: shapes, value range, backprop, checkpoint round trip."""

import pytest
import torch

from pixelheal.models import ARCHITECTURES, composite, load, make_model

TINY = {
    "unet_frm": {"widths": [4, 8, 16]},
    "unet_aspp": {"widths": [4, 8, 16], "dilations": [1, 2]},
    "gan": {"base_channels": 4, "disc_channels": 4, "crop_size": 16},
    "pixelcnn": {"hidden": 8, "n_blocks": 1, "cond_layers": 2, "sampling": "greedy"},
    "rowrnn": {"embed_dim": 8, "hidden": 8, "n_layers": 2, "sampling": "greedy"},
}
SAMPLING = {"pixelcnn", "rowrnn"}  # autoregressive: inpaint samples the hole instead of compositing forward()


def _batch(channels: int = 3, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, channels, size, size, generator=g)
    masks = (torch.rand(2, 1, size, size, generator=g) < 0.3).float()
    return images, masks


def test_every_architecture_has_a_tiny_setting():
    assert set(TINY) == set(ARCHITECTURES)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("channels", [1, 3])
def test_inpaint_shape_range_and_backprop(arch, channels):
    model = make_model(arch, in_channels=channels, **TINY[arch])
    images, masks = _batch(channels)
    completion = model.eval().inpaint(images, masks)
    assert completion.shape == images.shape
    assert completion.min() >= 0 and completion.max() <= 1
    model.train().losses(images, masks)["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_inpaint_keeps_known_pixels(arch):
    model = make_model(arch, **TINY[arch]).eval()
    images, masks = _batch()
    out = model.inpaint(images, masks)
    known = masks.expand_as(images) == 0
    assert torch.equal(out[known], images[known])
    if arch not in SAMPLING:
        assert torch.allclose(out, composite(images, masks, model(images, masks)))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_load_rebuilds_the_model_from_the_file_alone(arch, tmp_path):
    model = make_model(arch, **TINY[arch]).eval()
    path = tmp_path / "model.pt"
    torch.save({"arch": arch, "hparams": TINY[arch], "model": model.state_dict(), "epoch": 1}, path)
    images, masks = _batch()
    assert torch.equal(load(path).inpaint(images, masks), model.inpaint(images, masks))


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match="unet_aspp"):
        make_model("resnet")


def test_unexpected_hyper_parameter_is_named():
    with pytest.raises(ValueError, match="colour"):
        make_model("unet_frm", colour=True)


def test_load_names_a_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello")
    with pytest.raises(ValueError, match="notes.pt"):
        load(path)
