"""U-Net inpainters and the shared U-Net assembly: the stage shapes of DESIGN §1 at the original widths."""

import pytest
import torch

from pixelheal.models import make_model
from pixelheal.models.blocks import BilinearUpsample, FeatureRefinement, TransposedUpsample
from pixelheal.models.fills import fill_holes, fill_logit
from pixelheal.models.unet import UNet


@pytest.mark.parametrize("arch", ["unet_frm", "unet_aspp"])
def test_stage_shapes_at_original_widths(arch):
    net = make_model(arch, widths=[64, 128, 256, 512]).eval()
    unet, shapes = net.unet, {}
    modules = {
        "enc1": unet.encoders[0],
        "enc2": unet.encoders[1],
        "enc3": unet.encoders[2],
        "bottleneck": unet.bottleneck,
        "dec3": unet.decoders[0],
        "dec2": unet.decoders[1],
        "dec1": unet.decoders[2],
        "head": unet.head,
    }
    for name, module in modules.items():
        module.register_forward_hook(lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:])))
    with torch.no_grad():
        net(torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    assert shapes == {
        "enc1": (64, 32, 32),
        "enc2": (128, 16, 16),
        "enc3": (256, 8, 8),
        "bottleneck": (512, 4, 4),
        "dec3": (256, 8, 8),
        "dec2": (128, 16, 16),
        "dec1": (64, 32, 32),
        "head": (3, 32, 32),
    }


def test_refinement_modules_differ():
    frm = make_model("unet_frm", widths=[8, 16])
    aspp = make_model("unet_aspp", widths=[8, 16], dilations=[1, 3])
    assert type(frm.unet.decoders[0].refine).__name__ == "FeatureRefinement"
    assert type(aspp.unet.decoders[0].refine).__name__ == "ASPPRefinement"
    assert [branch[0].dilation for branch in aspp.unet.decoders[0].refine.branches] == [(1, 1), (3, 3)]


def test_hole_weight_only_changes_the_weight_of_hole_pixels():
    torch.manual_seed(0)
    plain = make_model("unet_frm", widths=[4, 8], hole_weight=1.0)
    weighted = make_model("unet_frm", widths=[4, 8], hole_weight=7.0)
    weighted.load_state_dict(plain.state_dict())
    images, empty, full = torch.rand(2, 3, 8, 8), torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8)
    assert torch.allclose(weighted.losses(images, empty)["loss"], plain.losses(images, empty)["loss"])
    assert torch.allclose(weighted.losses(images, full)["loss"], 7 * plain.losses(images, full)["loss"])


@pytest.mark.parametrize("loss", ["mse", "l1"])
def test_loss_kind_is_the_mean_pixel_error(loss):
    model = make_model("unet_frm", widths=[4, 8], loss=loss).eval()
    images, masks = torch.rand(2, 3, 8, 8), torch.zeros(2, 1, 8, 8)
    error = model(images, masks) - images
    expected = error.abs().mean() if loss == "l1" else error.square().mean()
    assert torch.allclose(model.losses(images, masks)["loss"], expected)


@pytest.mark.parametrize(
    "arch, kwargs, message",
    [
        ("unet_frm", {"widths": [8]}, "unet_frm.model.widths: need at least one encoder stage"),
        ("unet_frm", {"widths": [8, 0]}, "unet_frm.model.widths: must all be >= 1"),
        ("unet_frm", {"loss": "huber"}, "unet_frm.model.loss: expected one of"),
        ("unet_frm", {"dilations": [1, 2]}, "unet_frm.model.dilations: unknown parameter"),
        ("unet_frm", {"hole_weight": -1.0}, "unet_frm.model.hole_weight: must be >= 0"),
        ("unet_aspp", {"dilations": []}, "unet_aspp.model.dilations: need at least one rate"),
        ("unet_aspp", {"widths": "8,16"}, "unet_aspp.model.widths: expected a list"),
    ],
)
def test_invalid_settings_are_named(arch, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_model(arch, **kwargs)


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
    with pytest.raises(ValueError, match=f"{arch}.model.hole_fill"):
        make_model(arch, widths=[4, 8], hole_fill="telea")


@pytest.mark.parametrize("arch", ["unet_frm", "unet_aspp"])
def test_a_pixel_correction_starts_at_the_fill_and_completes_within_range(arch):
    torch.manual_seed(0)
    model = make_model(arch, widths=[4, 8], hole_fill="biharmonic", correction="pixel").eval()
    images, masks = torch.rand(2, 3, 16, 16), (torch.rand(2, 1, 16, 16) < 0.3).float()
    images[0] = 1.0  # a white image: a logit prior would start it at sigmoid(logit(1 - 1e-3))
    assert torch.equal(model(images, masks), fill_holes(images, masks, "biharmonic"))
    with torch.no_grad():
        model.unet.head.bias.fill_(2.0)  # a correction past white
    assert model(images, masks).amax() > 1
    completed = model.inpaint(images, masks)
    assert torch.equal(completed, torch.where(masks.bool(), 1.0, images))


def test_the_pixel_correction_keeps_its_gradient_where_the_fill_is_near_white():
    images, masks = torch.full((1, 3, 16, 16), 0.999), torch.zeros(1, 1, 16, 16)
    masks[..., 4:12, 4:12] = 1
    gradients = {}
    for correction in ("logit", "pixel"):
        model = make_model("unet_frm", widths=[4, 8], hole_fill="biharmonic", correction=correction)
        model(images, masks).sum().backward()
        gradients[correction] = model.unet.head.bias.grad
    # d output / d head: sigmoid'(logit(0.999)) ~ 1e-3 against 1 per pixel
    assert torch.allclose(gradients["pixel"], torch.full((3,), 256.0))
    assert (gradients["logit"] < 1).all()


@pytest.mark.parametrize("arch", ["unet_frm", "unet_aspp"])
def test_an_unknown_correction_is_refused(arch):
    with pytest.raises(ValueError, match=f"{arch}.model.correction"):
        make_model(arch, widths=[4, 8], correction="linear")


# The shared assembly, as the U-Net inpainters and the GAN generator configure it.


@pytest.mark.parametrize("upsample", [TransposedUpsample, BilinearUpsample])
@pytest.mark.parametrize("size", [16, 25])
def test_both_upsampling_kinds_return_the_input_size(upsample, size):
    net = UNet(3, (4, 8, 16), upsample=upsample, refinement=FeatureRefinement).eval()
    images, masks = torch.rand(2, 3, size, size), torch.zeros(2, 1, size, size)
    assert net(images, masks).shape == images.shape


def test_decoder_widths_follow_the_upsampling():
    learned = UNet(3, (4, 8, 16), upsample=TransposedUpsample)
    bilinear = UNet(3, (4, 8, 16), upsample=BilinearUpsample)
    # learned: up to the skip's width, then 2 x skip; bilinear keeps the width: input + skip
    assert [d.conv[0].in_channels for d in learned.decoders] == [16, 8]
    assert [d.conv[0].in_channels for d in bilinear.decoders] == [24, 12]
    assert not any(p.numel() for d in bilinear.decoders for p in d.up.parameters())


def test_attention_is_optional_and_sits_before_the_bottleneck():
    plain = UNet(3, (4, 8, 8), upsample=BilinearUpsample)
    attended = UNet(3, (4, 8, 8), upsample=BilinearUpsample, attention=True)
    assert isinstance(plain.attention, torch.nn.Identity)
    assert type(attended.attention).__name__ == "SelfAttention"
    names = [name.split(".")[0] for name in attended.state_dict()]
    assert names.index("attention") < names.index("bottleneck")
    extra = sum(p.numel() for p in attended.attention.parameters())
    assert sum(p.numel() for p in attended.parameters()) == sum(p.numel() for p in plain.parameters()) + extra


@pytest.mark.parametrize("activation", [torch.sigmoid, torch.tanh])
def test_a_zero_head_returns_the_activated_prior(activation):
    torch.manual_seed(0)
    net = UNet(3, (4, 8), upsample=TransposedUpsample, refinement=FeatureRefinement, activation=activation).eval()
    images, masks = torch.rand(2, 3, 16, 16), (torch.rand(2, 1, 16, 16) < 0.3).float()
    filled = fill_holes(images, masks, "smooth")
    prior = fill_logit(filled)
    assert torch.equal(net(filled, masks, prior), activation(prior))
    assert torch.equal(net(filled, masks), activation(torch.zeros_like(images)))  # no prior: mid-grey


def test_images_smaller_than_the_pooling_allows_are_refused():
    net = UNet(1, (4, 8, 16, 16), upsample=BilinearUpsample)
    with pytest.raises(ValueError, match="at least 8x8"):
        net(torch.rand(1, 1, 7, 12), torch.zeros(1, 1, 7, 12))
