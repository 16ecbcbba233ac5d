"""U-Net inpainters: the stage shapes of DESIGN §1 at the original widths."""

import pytest
import torch

from pixelheal.models import make_model


@pytest.mark.parametrize("arch", ["unet_frm", "unet_aspp"])
def test_stage_shapes_at_original_widths(arch):
    model = make_model(arch, widths=[64, 128, 256, 512]).eval()
    shapes = {}
    modules = {"enc1": model.encoders[0], "enc2": model.encoders[1], "enc3": model.encoders[2],
               "bottleneck": model.bottleneck, "dec3": model.decoders[0], "dec2": model.decoders[1],
               "dec1": model.decoders[2], "head": model.head}
    for name, module in modules.items():
        module.register_forward_hook(lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:])))
    with torch.no_grad():
        model(torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    assert shapes == {
        "enc1": (64, 32, 32), "enc2": (128, 16, 16), "enc3": (256, 8, 8), "bottleneck": (512, 4, 4),
        "dec3": (256, 8, 8), "dec2": (128, 16, 16), "dec1": (64, 32, 32), "head": (3, 32, 32),
    }


def test_refinement_modules_differ():
    frm = make_model("unet_frm", widths=[8, 16])
    aspp = make_model("unet_aspp", widths=[8, 16])
    assert type(frm.decoders[0].refine).__name__ == "FeatureRefinement"
    assert type(aspp.decoders[0].refine).__name__ == "ASPPRefinement"


def test_hole_weight_only_changes_the_weight_of_hole_pixels():
    torch.manual_seed(0)
    model = make_model("unet_frm", widths=[4, 8], hole_weight=1.0)
    images, empty = torch.rand(2, 3, 8, 8), torch.zeros(2, 1, 8, 8)
    base = model.losses(images, empty)["loss"]
    full = torch.ones(2, 1, 8, 8)
    full_base = model.losses(images, full)["loss"]
    model.hole_weight = 7.0
    assert torch.allclose(model.losses(images, empty)["loss"], base)
    assert torch.allclose(model.losses(images, full)["loss"], 7 * full_base)


@pytest.mark.parametrize("kwargs, name", [({"widths": [8]}, "widths"), ({"loss": "huber"}, "loss")])
def test_invalid_settings_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_model("unet_frm", **kwargs)


@pytest.mark.parametrize("size", [28, 36, 25])
def test_odd_feature_sizes_keep_the_input_size(size):
    model = make_model("unet_aspp", widths=[4, 8, 16, 32], in_channels=1).eval()
    out = model(torch.rand(1, 1, size, size), torch.zeros(1, 1, size, size))
    assert out.shape == (1, 1, size, size)


@pytest.mark.parametrize("arch", ["unet_frm", "unet_aspp"])
@pytest.mark.parametrize("fill", ["zero", "smooth", "biharmonic"])
def test_hole_fill_is_a_hyper_parameter(arch, fill):
    model = make_model(arch, widths=[4, 8], hole_fill=fill)
    images, masks = torch.rand(2, 3, 16, 16), (torch.rand(2, 1, 16, 16) < 0.3).float()
    assert model(images, masks).shape == images.shape


@pytest.mark.parametrize("arch", ["unet_frm", "unet_aspp"])
def test_an_unknown_hole_fill_is_refused(arch):
    with pytest.raises(ValueError, match="hole_fill"):
        make_model(arch, widths=[4, 8], hole_fill="telea")
