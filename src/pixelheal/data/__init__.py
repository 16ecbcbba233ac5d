"""Image sources, preparation (convert / crop / resize) and the memory-mapped image set.

`check_source(block)` and `preprocessing_config(block)` check the `data_processing.source` and
`data_processing.preprocessing` blocks without reading any image.
"""

from pixelheal.data.build import ImageSet, build_image_set
from pixelheal.data.records import ImageReadError, ImageRecord, ImageSource, read_image
from pixelheal.data.sources import SOURCE_KINDS, check_source, make_source
from pixelheal.data.transforms import Preprocessing, prepare, prepare_image, preprocessing_config, to_8bit

__all__ = [
    "SOURCE_KINDS",
    "ImageReadError",
    "ImageRecord",
    "ImageSet",
    "ImageSource",
    "Preprocessing",
    "build_image_set",
    "check_source",
    "make_source",
    "prepare",
    "prepare_image",
    "preprocessing_config",
    "read_image",
    "to_8bit",
]
