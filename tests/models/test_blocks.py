"""Building blocks: the refinements compute their written formula, in any layout and under bfloat16 autocast."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixelheal.models.blocks import (
    ASPPRefinement,
    BilinearUpsample,
    FeatureRefinement,
    TransposedUpsample,
    conv_of_concatenation,
    dense_gradient,
    resize_mask,
)


def _features_and_masks(channels: int, side: int = 32, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(batch, channels, side, side, generator=generator)
    masks = (torch.rand(batch, 1, side, side, generator=generator) < 0.3).float()
    return features, masks


def _concatenated(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """features ++ the mask at their scale: the map the refinements' formulas read."""
    return torch.cat([features, F.adaptive_avg_pool2d(masks, features.shape[-2:])], dim=1)


def _frm_by_concatenation(block: FeatureRefinement, features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    context = block.context(_concatenated(features, masks))
    return features + context * torch.sigmoid(block.gate(context))


def _aspp_by_concatenation(block: ASPPRefinement, features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The block's formula as written in its docstring: every branch reads features ++ mask."""
    x = _concatenated(features, masks)
    branches = [branch(x) for branch in block.branches]
    pooled = block.pooled(F.adaptive_avg_pool2d(x, 1)).expand_as(branches[0])
    context = block.context(torch.cat([*branches, pooled], dim=1))
    return features + context * torch.sigmoid(block.gate(context))


@pytest.mark.parametrize(("kernel", "dilation"), [(1, 1), (3, 1), (3, 4)])
def test_conv_of_concatenation_is_the_convolution_of_the_concatenated_map(kernel, dilation):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(9, 5, kernel, padding=dilation * (kernel // 2), dilation=dilation)
    features, masks = _features_and_masks(8, side=12)
    expected = conv(torch.cat([features, masks], dim=1))
    assert torch.allclose(conv_of_concatenation(conv, features, masks), expected, atol=1e-5)


def test_feature_refinement_computes_its_formula_and_keeps_its_parameters():
    torch.manual_seed(0)
    block = FeatureRefinement(16)
    features, masks = _features_and_masks(16, side=12)
    assert torch.allclose(block(features, masks), _frm_by_concatenation(block, features, masks), atol=1e-5)
    assert block.context[0].weight.shape == (16, 17, 3, 3)


def test_aspp_refinement_computes_its_formula_and_keeps_its_parameters():
    torch.manual_seed(0)
    block = ASPPRefinement(16, dilations=(1, 2))
    features, masks = _features_and_masks(16, side=12)
    assert torch.allclose(block(features, masks), _aspp_by_concatenation(block, features, masks), atol=1e-5)
    # The weights still read features ++ mask: checkpoints of the concatenating block load unchanged.
    assert block.branches[0][0].weight.shape == (8, 17, 3, 3) and block.pooled[1].weight.shape == (8, 17, 1, 1)
    assert sorted(block.state_dict()) == sorted(
        ["branches.0.0.weight", "branches.0.0.bias", "branches.1.0.weight", "branches.1.0.bias"]
        + ["pooled.1.weight", "pooled.1.bias", "context.0.weight", "context.0.bias", "gate.weight", "gate.bias"]
    )


def test_aspp_refinement_in_bfloat16_channels_last_has_finite_weight_gradients():
    """64 channels + the mask at 32x32: as one 65-channel map, oneDNN's dilated bf16 NHWC weight gradients are NaN."""
    torch.manual_seed(0)
    block = ASPPRefinement(64, dilations=(1, 2, 4)).to(memory_format=torch.channels_last)
    features, masks = _features_and_masks(64)
    features = features.to(memory_format=torch.channels_last).requires_grad_()
    with torch.autocast("cpu", torch.bfloat16):
        out = block(features, masks)
    assert out.is_contiguous(memory_format=torch.channels_last)
    out.float().square().mean().backward()
    for name, parameter in block.named_parameters():
        assert torch.isfinite(parameter.grad).all(), name
    assert torch.isfinite(features.grad).all()


@pytest.mark.parametrize("block", [FeatureRefinement(8), ASPPRefinement(8)], ids=["frm", "aspp"])
def test_refinements_keep_bfloat16_features_in_bfloat16(block):
    features, masks = _features_and_masks(8, side=8)
    with torch.autocast("cpu", torch.bfloat16):
        out = block(features.bfloat16(), masks)
    assert out.dtype == torch.bfloat16
    assert resize_mask(masks, features.bfloat16()).dtype == torch.bfloat16


def test_dense_gradient_passes_the_same_gradient_on_densely_laid_out():
    x = torch.randn(2, 4, 6, 6).to(memory_format=torch.channels_last).requires_grad_()
    seen = []
    y = dense_gradient(torch.relu(x))
    y.register_hook(lambda grad: seen.append(grad.is_contiguous(memory_format=torch.channels_last)))
    weights = torch.randn(2, 7, 6, 6)
    (torch.cat([y, torch.zeros(2, 3, 6, 6)], dim=1) * weights).sum().backward()
    assert seen == [True]  # cat's backward alone hands over a strided slice
    assert torch.equal(x.grad, weights[:, :4] * (x > 0))


def test_dense_gradient_leaves_tensors_without_gradient_alone():
    x = torch.randn(1, 2, 3, 3)
    assert dense_gradient(x) is x and not x._backward_hooks


def test_bilinear_upsampling_gradient_matches_interpolate():
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    skip = torch.zeros(2, 3, 10, 10)
    BilinearUpsample(3, 3)(x, skip).pow(2).sum().backward()
    reference = x.detach().requires_grad_()
    F.interpolate(reference, size=(10, 10), mode="bilinear", align_corners=False).pow(2).sum().backward()
    assert torch.allclose(x.grad, reference.grad)


@pytest.mark.parametrize("skip_side", [10, 11])  # an odd skip comes back one short and is padded
def test_transposed_upsampling_is_the_transposed_convolution_padded_to_the_skip(skip_side):
    torch.manual_seed(0)
    up = TransposedUpsample(6, 4)
    x = torch.randn(2, 6, 5, 5, requires_grad=True)
    y = up(x, torch.zeros(2, 4, skip_side, skip_side))
    reference_x = x.detach().requires_grad_()
    reference = F.pad(nn.ConvTranspose2d.forward(up, reference_x), [0, skip_side - 10, 0, skip_side - 10])
    assert y.shape == reference.shape == (2, 4, skip_side, skip_side)
    assert torch.allclose(y, reference, atol=1e-6)
    y.pow(2).sum().backward()
    reference.pow(2).sum().backward()
    assert torch.allclose(x.grad, reference_x.grad, atol=1e-5)
    assert [name for name, _ in up.named_parameters()] == ["weight", "bias"]  # checkpoints keep their keys
