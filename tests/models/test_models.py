"""Every registered architecture, at its embedded default hyper-parameters: shapes, range, backprop, checkpoints.

The settings come from the architecture's block in conf/base/parameters_train.yml, so a new
architecture is covered by these tests as soon as it is registered and has its parameters block.
"""

import pytest
import torch
import yaml

from pixelheal.models import ARCHITECTURES, Checkpoint, composite, load, make_model, save_checkpoint
from pixelheal.models.autoregressive import AutoregressiveInpainter
from tests.conftest import PROJECT_ROOT

PARAMETERS = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "parameters_train.yml").read_text())


def _hparams(arch: str, channels: int = 3) -> dict:
    block = dict(PARAMETERS[arch]["model"])
    assert block.pop("kind") == arch
    return {**block, "in_channels": channels}


def _batch(channels: int = 3, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, channels, size, size, generator=g)
    masks = (torch.rand(2, 1, size, size, generator=g) < 0.3).float()
    return images, masks


def test_every_architecture_has_a_parameters_block():
    assert set(ARCHITECTURES) <= set(PARAMETERS)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("channels", [1, 3])
def test_inpaint_shape_range_and_backprop(arch, channels):
    model = make_model(arch, **_hparams(arch, channels))
    images, masks = _batch(channels)
    completion = model.eval().inpaint(images, masks)
    assert completion.shape == images.shape
    assert completion.min() >= 0 and completion.max() <= 1
    model.train().losses(images, masks)["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_inpaint_keeps_known_pixels(arch):
    model = make_model(arch, **_hparams(arch)).eval()
    images, masks = _batch()
    out = model.inpaint(images, masks)
    known = masks.expand_as(images) == 0
    assert torch.equal(out[known], images[known])
    if not isinstance(model, AutoregressiveInpainter):  # samplers draw the hole instead of compositing forward()
        assert torch.allclose(out, composite(images, masks, model(images, masks)))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_load_rebuilds_the_model_from_the_file_alone(arch, tmp_path):
    model = make_model(arch, **_hparams(arch)).eval()
    path = tmp_path / "model.pt"
    save_checkpoint(
        Checkpoint(
            arch=arch,
            hparams=_hparams(arch),
            model=model.state_dict(),
            epoch=1,
            metrics={},
            history=[],
            training={},
            image_size=(16, 16),
        ),
        path,
    )
    loaded, (images, masks) = load(path), _batch()
    torch.manual_seed(0)  # sampling architectures draw the same completion from the same seed
    expected = model.inpaint(images, masks)
    torch.manual_seed(0)
    assert torch.equal(loaded.inpaint(images, masks), expected)


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match="unet_aspp"):
        make_model("resnet")


def test_unexpected_hyper_parameter_is_named():
    with pytest.raises(ValueError, match=r"^unet_frm\.model\.colour: unknown parameter"):
        make_model("unet_frm", colour=True)


def test_load_names_a_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello")
    with pytest.raises(ValueError, match="notes.pt"):
        load(path)
