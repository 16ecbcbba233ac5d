"""PixelHeal: train, evaluate and compare deep image-inpainting architectures."""

__version__ = "0.1.0"
