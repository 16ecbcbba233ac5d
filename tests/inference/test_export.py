"""ONNX and TorchScript export of `inpaint`: equal to PyTorch at two sizes, fixed sizes enforced, refusals in one line."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import torch.nn.functional as F

from pixelheal.config import ConfigError
from pixelheal.inference.export import check_export, export_model, plan_export, random_batch, resize_weights
from pixelheal.models import make_model

TINY = {
    "unet_frm": ("unet_frm", {"widths": [4, 8, 16]}),
    "unet_aspp": ("unet_aspp", {"widths": [4, 8, 16], "dilations": [1, 2]}),
    "gan_hole_context": ("gan", {"base_channels": 4, "disc_channels": 4, "context_ring": 0.06, "crop_size": 16}),
    "gan_whole_image": ("gan", {"variant": "whole_image", "base_channels": 4, "disc_channels": 4}),
    "pixelheal": ("pixelheal", {"hidden": 4, "n_layers": 1}),
}
FIXED = {  # models whose computation depends on the image size: exported at the training size only
    "unet_frm_smooth_fill": ("unet_frm", {"widths": [4, 8], "hole_fill": "smooth"}),
    "gan_ring_mask": ("gan", {"base_channels": 4, "disc_channels": 4, "context_ring": 0.1, "ring_mask": True}),
    "gan_whole_image_ring_mask": ("gan", {"variant": "whole_image", "base_channels": 4, "ring_mask": True}),
}
SIZE = (16, 16)


def randomised(kind: str, **hparams) -> torch.nn.Module:
    """A tiny model with random weights and BatchNorm statistics: at init its zero heads would output a constant."""
    torch.manual_seed(0)
    model = make_model(kind, **hparams)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if not tensor.is_floating_point() or name.endswith(".mask"):  # masked convolutions' causal masks
                continue
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            else:
                tensor.normal_(0, 0.3)
    return model.eval()


def _plan(case: str):
    kind, hparams = {**TINY, **FIXED}[case]
    return plan_export(randomised(kind, **hparams), kind, SIZE)


@pytest.mark.parametrize("case", sorted(TINY))
def test_onnx_export_equals_pytorch_at_two_sizes(case):
    plan = _plan(case)
    assert plan.dynamic
    data = export_model(plan, "onnx", 3, plan.metadata(case))
    differences = check_export(data, "onnx", plan, 3)
    assert sorted(differences) == sorted(["16x16", "x".join(map(str, plan.second_size()))])
    assert max(differences.values()) <= 1e-4
    proto = onnx.load_from_string(data)
    assert {p.key: p.value for p in proto.metadata_props}["pixelheal.arch"] == case
    assert [i.name for i in proto.graph.input] == ["image", "mask"]
    image_dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert image_dims[1] == 3 and all(isinstance(d, str) for d in image_dims[::2])  # batch, height, width dynamic


@pytest.mark.parametrize("case", sorted(TINY))
def test_torchscript_export_equals_pytorch_at_two_sizes(case):
    plan = _plan(case)
    data = export_model(plan, "torchscript", 3, plan.metadata(case))
    assert max(check_export(data, "torchscript", plan, 3).values()) <= 1e-4
    assert len(check_export(data, "torchscript", plan, 3)) == 2


@pytest.mark.parametrize("case", sorted(FIXED))
def test_a_size_dependent_model_exports_at_its_training_size_and_refuses_others(case):
    plan = _plan(case)
    assert not plan.dynamic and plan.fixed_reason
    data = export_model(plan, "torchscript", 3, plan.metadata(case))
    assert list(check_export(data, "torchscript", plan, 3)) == ["16x16"]
    module = torch.jit.load(io.BytesIO(data))
    with pytest.raises(Exception, match="this export takes images of 16x16 only"):
        module(torch.rand(1, 3, 24, 24), torch.zeros(1, 1, 24, 24))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_biharmonic_fill_exports_its_convergence_stop_not_its_traced_iteration_count(fmt):
    # check_export's holes differ from the tracing example's: a graph that kept the iteration count
    # the trace happened to run would fill them differently from PyTorch.
    plan = plan_export(randomised("unet_frm", widths=[4, 8], hole_fill="biharmonic"), "unet_frm", SIZE)
    data = export_model(plan, fmt, 3, plan.metadata("unet_frm"))
    assert max(check_export(data, fmt, plan, 3).values()) <= 1e-4


@pytest.mark.slow
def test_a_size_dependent_onnx_export_states_its_fixed_size():
    plan = _plan("unet_frm_smooth_fill")
    data = export_model(plan, "onnx", 3, plan.metadata("unet_frm"))
    assert list(check_export(data, "onnx", plan, 3)) == ["16x16"]
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [3, 16, 16]
    with pytest.raises(Exception, match="dimensions"):
        session.run(None, {"image": np.zeros((1, 3, 24, 24), np.float32), "mask": np.zeros((1, 1, 24, 24), np.float32)})


def test_hole_context_crops_as_matrices_equal_the_model_on_many_holes():
    plan = _plan("gan_hole_context")
    model = plan.model
    generator = torch.Generator().manual_seed(1)
    for size in [(16, 16), (40, 28), (17, 50), (48, 48)] * 5:
        images, masks = random_batch(3, size, generator)
        masks[1] = 0  # a thin hole somewhere, often at the border
        top, left = (int(torch.randint(0, n, (), generator=generator)) for n in size)
        masks[1, :, top : top + 2, left : left + 9] = 1
        with torch.no_grad():
            assert (plan.module(images, masks) - model.inpaint(images, masks)).abs().max() <= 1e-5


def test_resize_weights_are_torchs_antialiased_bilinear_weights_with_the_same_zeros():
    for n in range(1, 40):
        for size in range(1, 40, 3):
            # Resizing the identity's rows yields the resampling matrix itself.
            expected = F.interpolate(torch.eye(n)[None, None], size=(size, n), mode="bilinear", antialias=True)[0, 0]
            one, zero = torch.tensor([n]), torch.tensor([0])
            weights = resize_weights(zero, one, n, zero, torch.tensor([size]), size)[0]
            assert torch.equal(weights > 0, expected > 0), (n, size)
            assert torch.allclose(weights, expected, atol=1e-6)


def test_a_different_model_fails_the_check_in_one_line():
    plan = _plan("unet_frm")
    other = _plan("unet_frm")
    with torch.no_grad():
        next(other.model.parameters()).add_(1.0)  # other weights: the export of `plan` no longer matches
    data = export_model(plan, "torchscript", 3, {})
    with pytest.raises(
        ValueError, match=r"^the torchscript export differs from PyTorch by .* at 16x16 \(tolerance 0.0001\)$"
    ):
        check_export(data, "torchscript", other, 3)


@pytest.mark.parametrize("kind, hparams", [("pixelcnn", {"hidden": 8, "n_blocks": 1}), ("rowrnn", {"hidden": 8})])
def test_sampling_architectures_are_refused_in_one_line(kind, hparams):
    with pytest.raises(ConfigError) as error:
        plan_export(make_model(kind, **hparams), kind, SIZE)
    assert error.value.key == "model" and "\n" not in str(error.value)
    assert f"{kind} inpaints by sampling the hole one sub-pixel at a time" in error.value.detail
