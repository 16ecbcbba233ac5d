"""Image sources, preparation (convert / crop / resize) and the memory-mapped image set."""

from pixelheal.data.build import ImageSet, build_image_set
from pixelheal.data.records import ImageReadError, ImageRecord, ImageSource, read_image
from pixelheal.data.sources import SOURCE_KINDS, make_source
from pixelheal.data.transforms import prepare_image

__all__ = [
    "SOURCE_KINDS",
    "ImageReadError",
    "ImageRecord",
    "ImageSet",
    "ImageSource",
    "build_image_set",
    "make_source",
    "prepare_image",
    "read_image",
]
