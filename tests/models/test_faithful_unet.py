"""The U-Net original (unet_frm / unet_aspp on CIFAR-10) reproduced by conf/cifar10."""

from __future__ import annotations

import re

import pytest
import torch

from pixelheal.data import preprocessing_config
from pixelheal.evaluation.perceptual import check_lpips_net
from pixelheal.masks import mask_generator_config
from pixelheal.models import make_model
from pixelheal.models.blocks import ASPPRefinement, FeatureRefinement, TransposedUpsample
from pixelheal.pipeline_registry import register_pipelines
from pixelheal.pipelines.train.nodes import training_parameters
from tests.conftest import PROJECT_ROOT, environment_parameters

CONF = PROJECT_ROOT / "conf" / "cifar10" / "parameters.yml"
# Encoder 64-128-256 + bottleneck 512 with the project's FRM / ASPP-FRM (the original gives no counts).
PARAMETERS = {"unet_frm": 11_151_363, "unet_aspp": 10_806_403}
REFINEMENT = {"unet_frm": FeatureRefinement, "unet_aspp": ASPPRefinement}


@pytest.fixture(scope="module")
def cifar10() -> dict:
    return environment_parameters("cifar10")


@pytest.mark.filterwarnings("ignore::UserWarning")  # Kedro's note on dotted dataset names
def test_the_header_names_the_pipelines_of_this_system_only():
    command = re.search(r"kedro run --env=cifar10 --pipelines=(\S+)", CONF.read_text())
    assert command is not None
    pipelines = command.group(1).split(",")
    assert pipelines == ["data_processing", "masks", "split", "train_unet_frm", "train_unet_aspp"]
    assert set(pipelines) <= set(register_pipelines())


def test_full_cifar10_from_torchvision_with_its_official_test_set(cifar10):
    source = cifar10["data_processing"]["source"]
    assert dict(source) == {"kind": "cifar10", "root": "data/01_raw/cifar10", "download": False, "include_test": True}
    preprocessing = preprocessing_config(cifar10["data_processing"]["preprocessing"])
    assert (preprocessing.image_size, preprocessing.center_crop, preprocessing.channels) == (32, None, 3)
    assert cifar10["split"]["official_test"] is True


def test_deeplabv3_masks_for_every_image_are_the_training_masks(cifar10):
    generator = mask_generator_config(cifar10["masks"]["generator"])
    assert type(generator).__name__ == "DeepLabV3Config" and generator.mode == "object"
    for arch in PARAMETERS:  # no random masks: training reads the precomputed DeepLabV3 masks
        assert training_parameters(cifar10[arch]["training"], f"{arch}.training").random_masks is None


@pytest.mark.parametrize("arch", sorted(PARAMETERS))
def test_the_unets_are_built_and_trained_as_the_original(cifar10, arch):
    block = dict(cifar10[arch]["model"])
    assert block.pop("kind") == arch
    model = make_model(arch, in_channels=3, **block)
    unet = model.unet
    assert sum(p.numel() for p in unet.parameters()) == PARAMETERS[arch]
    assert [e[0].out_channels for e in unet.encoders] == [64, 128, 256] and unet.bottleneck[0].out_channels == 512
    assert all(isinstance(d.up, TransposedUpsample) and isinstance(d.refine, REFINEMENT[arch]) for d in unet.decoders)
    assert (unet.head.kernel_size, unet.activation) == ((1, 1), torch.sigmoid)
    bottom = []
    unet.bottleneck.register_forward_hook(lambda module, inputs, output: bottom.append(output.shape[-2:]))
    images, masks = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    masks[..., 8:20, 4:16] = 1
    loss = model.losses(images, masks)["loss"]
    assert bottom == [(4, 4)]  # 32x32 → 4x4
    # MSE over every pixel, the hole not weighted up, on the masked image (zero fill)
    assert (model.config.loss, model.config.hole_weight, model.config.hole_fill) == ("mse", 1.0, "zero")
    with torch.no_grad():
        assert loss.item() == pytest.approx((model(images, masks) - images).square().mean().item(), rel=1e-6)

    training = training_parameters(cifar10[arch]["training"], f"{arch}.training")
    assert (training.optimizer, training.lr, training.weight_decay, training.epochs) == ("adam", 1e-3, 0.0, 15)
    assert training.batch_size == 64


def test_lpips_is_reported_on_vgg(cifar10):
    assert check_lpips_net(cifar10["evaluation"]["lpips_net"]) == "vgg"
