"""LPIPS and FID that never download: each metric is available or unavailable with a reason.

Weights come from the torch hub cache (``torch.hub.get_dir()/checkpoints``) or a local path;
when they cannot be had the metric is reported as unavailable (None) with one log warning,
never a crash and never a fake number. ``"random"`` builds randomly initialised networks so
tests exercise the code path; its values are meaningless. LPIPS runs on AlexNet (``lpips_net:
alex``, the default) or VGG16 (``vgg``, as the U-Net original reported it); either backbone's
weights are torchvision's ImageNet state_dict, the linear layers on top ship with ``lpips``.

contract: images are float in [0, 1], N×C×H×W with C = 1 or 3.
"""

from __future__ import annotations

import bisect
import logging
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import lpips as lpips_lib
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Module
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
from torchvision.models import AlexNet_Weights, VGG16_Weights

logger = logging.getLogger(__name__)

ALEXNET_FILE = Path(AlexNet_Weights.IMAGENET1K_V1.url).name  # alexnet-owt-7be5be79.pth
VGG16_FILE = Path(VGG16_Weights.IMAGENET1K_V1.url).name  # vgg16-397923af.pth
INCEPTION_FILE = Path(URL_INCEPTION_V3).name  # weights-inception-2015-12-05-6726825d.pth
# AlexNet's feature stack collapses to nothing below 32 px, so smaller images are upscaled (for VGG too).
LPIPS_MIN_SIDE = 32
_RANDOM_SEED = 0  # random networks are still reproducible
FID_FEATURES = 2048  # the standard pool3 features
# Random FID only checks the code path; the 2048-d covariance square root alone takes ~10 s on CPU.
_RANDOM_FID_FEATURES = 64


@dataclass(frozen=True)
class LPIPSNet:
    """An LPIPS backbone: torchvision's weights file and where lpips cuts its `features` into slices."""

    weights_file: str  # the file name torchvision caches in the hub's checkpoints folder
    slice_ends: tuple[int, ...]  # `features` index (exclusive) where slice 1, 2, ... ends


LPIPS_NETS = {
    "alex": LPIPSNet(ALEXNET_FILE, (2, 5, 8, 10, 12)),
    "vgg": LPIPSNet(VGG16_FILE, (4, 9, 16, 23, 30)),
}


def check_lpips_net(net: object, where: str = "evaluation.lpips_net") -> str:
    """The LPIPS backbone's name, or a ValueError naming `where`."""
    if net not in LPIPS_NETS:
        raise ValueError(f"{where}: expected one of {sorted(LPIPS_NETS)}, got {net!r}")
    return str(net)


def _weights_file(setting: str, default_name: str) -> Path:
    """The weights file a setting points to: the hub cache file for "default", else the path."""
    if setting == "default":
        return Path(torch.hub.get_dir()) / "checkpoints" / default_name
    return Path(setting).expanduser()


def _features_to_lpips(state: dict[str, Tensor], slice_ends: tuple[int, ...]) -> dict[str, Tensor]:
    """Rename torchvision 'features.i.*' keys to lpips 'slice<k>.i.*' keys (the classifier is dropped)."""
    renamed = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "features":
            index = int(parts[1])
            renamed[f"slice{bisect.bisect_right(slice_ends, index) + 1}.{index}.{parts[2]}"] = value
    return renamed


def _build_lpips(weights: Path | None, net: str = "alex") -> Module:
    """LPIPS on backbone `net`, from `weights` (torchvision's state_dict of it) or random when None."""
    with warnings.catch_warnings():
        # lpips calls torchvision's deprecated `pretrained=` argument; not ours to fix
        warnings.simplefilter("ignore", UserWarning)
        # pnet_rand=True: build the backbone without torchvision's download path
        model = lpips_lib.LPIPS(net=net, pretrained=weights is not None, pnet_rand=True, verbose=False)
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.net.load_state_dict(_features_to_lpips(state, LPIPS_NETS[net].slice_ends), strict=True)
    return model.eval().requires_grad_(False)


class _RandomInceptionV3(NoTrainInceptionV3):
    """InceptionV3 that keeps its random initialisation (the weights file is empty)."""

    def load_state_dict(self, state_dict, strict=True, assign=False):  # noqa: D102
        return super().load_state_dict(self.state_dict(), strict=strict, assign=assign)


def _random_inception_file(folder: Path) -> Path:
    """Write a randomly initialised InceptionV3 state_dict under folder and return its path."""
    empty = folder / "empty.pth"
    torch.save({}, empty)
    model = _RandomInceptionV3("inception-v3-compat", [str(_RANDOM_FID_FEATURES)], str(empty))
    path = folder / "random_inception.pth"
    torch.save(model.state_dict(), path)
    return path


def _build_fid(weights: Path | None) -> FrechetInceptionDistance:
    """torchmetrics FID on 2048-d pool features; random Inception (64-d features) when None."""
    # A weights path is always passed, so torch_fidelity never reaches its download branch.
    if weights is not None:
        return FrechetInceptionDistance(
            feature=FID_FEATURES, normalize=True, feature_extractor_weights_path=str(weights)
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = _random_inception_file(Path(tmp))
        return FrechetInceptionDistance(
            feature=_RANDOM_FID_FEATURES, normalize=True, feature_extractor_weights_path=str(path)
        )


def _to_rgb(x: Tensor | np.ndarray, device: torch.device) -> Tensor:
    """Float (N, 3, H, W) on device; grayscale repeated to 3 channels."""
    t = torch.as_tensor(x).detach().to(device, torch.float32)
    if t.ndim != 4 or t.shape[1] not in (1, 3):
        raise ValueError(f"images must be N×C×H×W with C in (1, 3), got {tuple(t.shape)}")
    return t.repeat(1, 3, 1, 1) if t.shape[1] == 1 else t  # (N, 3, H, W)


class PerceptualMetrics:
    """Accumulates LPIPS (per image) and FID over batches; either may be unavailable."""

    def __init__(
        self, lpips: str = "default", fid: str = "default", device: str = "cpu", lpips_net: str = "alex"
    ) -> None:
        """Set up both metrics; settings are "default", "none", "random" or a local .pth path.

        `lpips_net` ("alex" or "vgg") is LPIPS's backbone; a path for `lpips` holds that backbone's weights.
        """
        net = check_lpips_net(lpips_net)
        self.device = torch.device(device)
        self.available: dict[str, str | None] = {}
        build_lpips = partial(_build_lpips, net=net)
        self._lpips_model = self._setup("lpips", lpips, LPIPS_NETS[net].weights_file, build_lpips)
        self._fid_metric = self._setup("fid", fid, INCEPTION_FILE, _build_fid)
        self._lpips_values: list[Tensor] = []
        self._warned_upscale = False

    def _setup(
        self, name: str, setting: str, default_name: str, build: Callable[[Path | None], Module]
    ) -> Module | None:
        """Build one metric or record why it is unavailable (one warning, no exception)."""
        if setting == "none":
            return self._unavailable(name, "disabled in parameters")
        if setting == "random":
            logger.warning("%s uses a RANDOMLY initialised network: values are meaningless", name)
            self.available[name] = None
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(_RANDOM_SEED)
                return build(None).to(self.device)
        path = _weights_file(setting, default_name)
        if not path.is_file():
            where = "not in the torch hub cache" if setting == "default" else "not found"
            return self._unavailable(name, f"weights file {path} {where}")
        try:
            model = build(path).to(self.device)
        except Exception as exc:  # a corrupt/mismatched file must not stop the evaluation
            return self._unavailable(name, f"could not load weights file {path}: {exc}")
        self.available[name] = None
        logger.info("%s uses weights %s", name, path)
        return model

    def _unavailable(self, name: str, reason: str) -> None:
        """Record and log (once) why a metric will be reported as None."""
        self.available[name] = reason
        logger.warning("%s unavailable (reported as None): %s", name, reason)
        return None

    def _lpips_inputs(self, x: Tensor) -> Tensor:
        """Scale to [-1, 1] and upscale images too small for AlexNet."""
        h, w = x.shape[-2:]
        if min(h, w) < LPIPS_MIN_SIDE:
            if not self._warned_upscale:
                logger.info("LPIPS: upscaling %dx%d images to a %d px side", h, w, LPIPS_MIN_SIDE)
                self._warned_upscale = True
            scale = LPIPS_MIN_SIDE / min(h, w)
            size = (max(LPIPS_MIN_SIDE, round(h * scale)), max(LPIPS_MIN_SIDE, round(w * scale)))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x * 2.0 - 1.0  # contract: lpips wants [-1, 1]

    @torch.no_grad()
    def update(self, originals: Tensor | np.ndarray, outputs: Tensor | np.ndarray) -> None:
        """Add one batch: LPIPS per image, FID real (originals) / fake (outputs) features."""
        real, fake = _to_rgb(originals, self.device), _to_rgb(outputs, self.device)
        if real.shape != fake.shape:
            raise ValueError(f"outputs shape {tuple(fake.shape)} differs from originals {tuple(real.shape)}")
        if self._lpips_model is not None:
            fake_in, real_in = self._lpips_inputs(fake), self._lpips_inputs(real)
            d = self._lpips_model(fake_in, real_in)  # (N, 1, 1, 1)
            self._lpips_values.append(d.reshape(-1).cpu())
        if self._fid_metric is not None:
            # normalize=True: torchmetrics turns [0, 1] floats into uint8 and resizes to 299
            self._fid_metric.update(real.clamp(0, 1), real=True)
            self._fid_metric.update(fake.clamp(0, 1), real=False)

    def lpips_per_image(self) -> Tensor | None:
        """(N,) LPIPS over every image seen, or None when unavailable or nothing was seen."""
        if self._lpips_model is None or not self._lpips_values:
            return None
        return torch.cat(self._lpips_values)

    def fid(self) -> float | None:
        """FID between all originals and all outputs seen, or None when it cannot be computed."""
        if self._fid_metric is None:
            return None
        n = int(self._fid_metric.fake_features_num_samples)
        if n < 2:
            logger.warning("FID needs at least 2 images, got %d: reported as None", n)
            return None
        value = float(self._fid_metric.compute())
        if not np.isfinite(value):
            logger.warning("FID came out as %s (too few images?): reported as None", value)
            return None
        return value
