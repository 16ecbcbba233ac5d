"""The training loop shared by every architecture, its data feeding and its configuration."""

from pixelheal.training.loop import TrainConfig, TrainResult, train, validate

__all__ = ["TrainConfig", "TrainResult", "train", "validate"]
