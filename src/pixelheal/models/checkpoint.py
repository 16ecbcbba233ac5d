"""The one checkpoint format: what a trained model's file holds, one atomic save, one checked read.

A checkpoint holds everything needed to rebuild and describe a trained model without the project
around it: the architecture key and hyper-parameters (to rebuild it), the best validation epoch's
weights, that epoch and its metrics, the per-epoch history, the training parameters and the image
size it was trained at (inference resizes user images to it). On disk it is a plain dict written
with `torch.save` and read with `weights_only=True`, so a file that pickles arbitrary Python objects
is refused instead of executed. `format` and `version` tell a checkpoint apart from other torch
files and from checkpoints of an older layout, each refused with one line naming the file; so are
weights that do not fit the hyper-parameters beside them (`load_weights` names the first tensor).

Training's resume state (weights and optimiser state after the last finished epoch) is another
file with its own format marker, at the path `train_state_path` derives from the checkpoint's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixelheal.storage import write_atomically

FORMAT = "pixelheal.checkpoint"
VERSION = 1  # bump when the fields change; read_checkpoint refuses every other version
TRAIN_STATE_FORMAT = "pixelheal.train_state"
_TRAIN_STATE_SUFFIX = ".state.pt"


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """A trained model as saved by the train node; the file holds these fields as a dict."""

    format: str = FORMAT
    version: int = VERSION
    arch: str  # key of the architecture registry
    hparams: dict[str, Any]  # the architecture's hyper-parameters, in_channels included
    model: dict[str, torch.Tensor]  # state_dict of the best validation epoch
    epoch: int  # the best epoch, 1-based
    metrics: dict[str, Any]  # the best epoch's history record, plus val_<metric>_untrained (before training)
    history: list[dict[str, Any]]  # one record per epoch: {"epoch", train_*, val_*, "seconds"}
    training: dict[str, Any]  # the training parameter block, as given
    image_size: tuple[int, int]  # (H, W) of the training images
    source: str = field(default="the checkpoint", compare=False)  # where it was read from, for messages; not stored

    @property
    def channels(self) -> int:
        """Image channels the model takes (1 = gray, 3 = RGB)."""
        return int(self.hparams.get("in_channels", 3))

    def to_dict(self) -> dict[str, Any]:
        """The plain dict stored on disk (no deep copy of the weights)."""
        fields = {name: getattr(self, name) for name in _FIELDS}
        return fields | {"image_size": [int(v) for v in self.image_size]}


_FIELDS = [f.name for f in dataclasses.fields(Checkpoint) if f.name != "source"]


def save_checkpoint(checkpoint: Checkpoint, path: str | Path) -> None:
    """Write `checkpoint` to `path` atomically: a reader sees the old file or the new one, never half."""
    write_atomically(path, lambda tmp: torch.save(checkpoint.to_dict(), tmp))


def read_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint in `path`; a missing, foreign, old or resume-state file fails with one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, or one pickling arbitrary objects (refused unread)
        raise ValueError(
            f"{path} is not a PixelHeal checkpoint: torch cannot read it as plain data ({type(error).__name__})"
        ) from None
    return checkpoint_from_dict(data, str(path))


def checkpoint_from_dict(data: Any, source: str) -> Checkpoint:
    """A `Checkpoint` from the dict stored in `source` (named in every error), checked field by field."""
    if not isinstance(data, dict):
        raise ValueError(f"{source} is not a PixelHeal checkpoint (it holds a {type(data).__name__})")
    found = data.get("format")
    if found == TRAIN_STATE_FORMAT:
        raise ValueError(f"{source} is a training resume state (read by `resume: true`), not a checkpoint")
    if found is None and {"arch", "hparams", "model"} <= data.keys():
        raise ValueError(
            f"{source} is a PixelHeal checkpoint from before format versioning (no version field); "
            f"retrain it with `kedro run --pipeline=train_{data['arch']}`"
        )
    if found != FORMAT:
        raise ValueError(f"{source} is not a PixelHeal checkpoint (format {found!r})")
    if data.get("version") != VERSION:
        raise ValueError(
            f"{source} has checkpoint format version {data.get('version')!r}; this PixelHeal reads version {VERSION}"
        )
    missing = [name for name in _FIELDS if name not in data]
    if missing:
        raise ValueError(f"{source} is an incomplete PixelHeal checkpoint: it lacks {missing}")
    height, width = (int(v) for v in data["image_size"])
    return Checkpoint(**{name: data[name] for name in _FIELDS} | {"image_size": (height, width), "source": source})


def weights_mismatch(module: nn.Module, weights: Mapping[str, Any]) -> str | None:
    """The first tensor of `weights` that does not fit `module` (missing, extra or of another shape), or None."""
    expected = module.state_dict()
    for name, tensor in expected.items():
        found = weights.get(name)
        if not isinstance(found, torch.Tensor):
            return f"{name} is missing" if found is None else f"{name} is not a tensor"
        if found.shape != tensor.shape:
            return f"{name} has shape {list(found.shape)}, the model expects {list(tensor.shape)}"
    extra = [name for name in weights if name not in expected]
    return f"{extra[0]} is not a tensor of this model" if extra else None


def load_weights(module: nn.Module, weights: Mapping[str, Any], source: str) -> None:
    """Load `weights` into `module`, refused with one line naming `source` and the first tensor that does not fit.

    torch's own error lists every mismatch over many lines and never names the file.
    """
    if not isinstance(weights, Mapping):
        raise ValueError(f"{source}: the weights are a {type(weights).__name__}, not a mapping of tensors")
    problem = weights_mismatch(module, weights)
    if problem:
        raise ValueError(f"{source}: the weights do not match the hyper-parameters: {problem}")
    module.load_state_dict(weights)


def train_state_path(checkpoint_path: str | Path) -> Path:
    """Where training keeps the resume state of the checkpoint `checkpoint_path`: `<name>.state.pt` beside it."""
    path = Path(checkpoint_path)
    return path.with_name(path.stem + _TRAIN_STATE_SUFFIX)


def is_train_state_path(path: str | Path) -> bool:
    """True for a path `train_state_path` gives: a resume state, not a checkpoint (listings skip it)."""
    return Path(path).name.endswith(_TRAIN_STATE_SUFFIX)
