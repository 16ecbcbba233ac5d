"""The training loop shared by every architecture, its data feeding and its configuration."""

from pixelheal.training.loop import TrainConfig, TrainResult, resolve_device, train, validate

__all__ = ["TrainConfig", "TrainResult", "resolve_device", "train", "validate"]
