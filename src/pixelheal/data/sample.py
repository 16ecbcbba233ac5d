"""The embedded "sample" source: seeded random crops of photographs shipped with scikit-image."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from numbers import Integral

import numpy as np
from PIL import Image

from pixelheal.data.records import ImageRecord

logger = logging.getLogger(__name__)

# Colour photographs whose files ship inside the scikit-image wheel, so they load without
# network (others in skimage.data are fetched by pooch on first use). Name -> loader.
_OFFLINE_PHOTOS = {
    "astronaut": lambda d: d.astronaut(),
    "chelsea": lambda d: d.chelsea(),
    "coffee": lambda d: d.coffee(),
    "rocket": lambda d: d.rocket(),
    "hubble_deep_field": lambda d: d.hubble_deep_field(),
    "immunohistochemistry": lambda d: d.immunohistochemistry(),
    "motorcycle": lambda d: d.stereo_motorcycle()[0],
    "retina": lambda d: d.retina(),
}
# retina is left out by default: its wide black border gives many all-black crops.
DEFAULT_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "motorcycle",
)
OFFLINE_PHOTOS = tuple(_OFFLINE_PHOTOS)


def load_photo(name: str) -> np.ndarray:
    """Load one bundled photograph as an H×W×3 uint8 array."""
    import skimage.data  # imported here: it is slow to import and only this source needs it

    photo = np.asarray(_OFFLINE_PHOTOS[name](skimage.data))  # (H, W, 3) uint8
    return np.ascontiguousarray(photo[..., :3])


def _check_crop_size(crop_size: Sequence[int]) -> tuple[int, int]:
    """Validate ``crop_size`` as (min_side, max_side) with 1 <= min <= max."""
    try:
        lo, hi = (int(v) for v in crop_size)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"crop_size must be two integers (min, max), got {crop_size!r}") from exc
    if not 1 <= lo <= hi:
        raise ValueError(f"crop_size must satisfy 1 <= min <= max, got {crop_size!r}")
    return lo, hi


class SampleSource:
    """``n_images`` seeded square crops (side uniform in ``crop_size``), cycling over the photos."""

    def __init__(
        self,
        n_images: int = 3000,
        crop_size: Sequence[int] = (48, 128),
        seed: int = 0,
        photos: Sequence[str] | None = None,
    ) -> None:
        """Validate the parameters; photos are loaded lazily on iteration."""
        if isinstance(n_images, bool) or not isinstance(n_images, Integral) or n_images < 1:
            raise ValueError(f"n_images must be a positive integer, got {n_images!r}")
        self.n_images = int(n_images)
        self.crop_size = _check_crop_size(crop_size)
        self.seed = seed
        self.photos = self._check_photos(photos)
        self.skipped: list[str] = []

    @staticmethod
    def _check_photos(photos: Sequence[str] | None) -> tuple[str, ...]:
        """Validate the ``photos`` names against the offline set."""
        if photos is None:
            return DEFAULT_PHOTOS
        if isinstance(photos, str):
            photos = [photos]
        unknown = [p for p in photos if p not in _OFFLINE_PHOTOS]
        if unknown or not photos:
            raise ValueError(f"photos must be a non-empty list of {list(OFFLINE_PHOTOS)}, got {list(photos)!r}")
        return tuple(photos)

    def __len__(self) -> int:
        """Number of crops."""
        return self.n_images

    def __iter__(self) -> Iterator[ImageRecord]:
        """Yield the crops; a fresh generator each time makes every pass identical."""
        rng = np.random.default_rng(self.seed)
        loaded = {name: load_photo(name) for name in self.photos}
        lo, hi = self.crop_size
        for k in range(self.n_images):
            name = self.photos[k % len(self.photos)]
            photo = loaded[name]  # (H, W, 3) uint8
            height, width = photo.shape[:2]
            side = min(int(rng.integers(lo, hi + 1)), height, width)
            top = int(rng.integers(0, height - side + 1))
            left = int(rng.integers(0, width - side + 1))
            crop = photo[top : top + side, left : left + side]  # (side, side, 3)
            yield ImageRecord(
                image=Image.fromarray(np.ascontiguousarray(crop)),
                source=f"skimage:{name}#{k}",
                label=name,
                subset="train",
            )
