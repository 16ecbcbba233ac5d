"""An exponential moving average of the weights (`<arch>.training.ema_decay`).

The average is what validation scores, the best epoch keeps and the checkpoint holds: it is a better
model than the last step's weights, which jitter with the learning rate. The raw weights keep
training, and the resume state holds both. The decay ramps up as (1 + n) / (10 + n) over the first
updates, so early averages are not dominated by the initial weights. Every floating entry of the
state_dict is averaged (BatchNorm statistics included); integer ones (counters) are copied. The
average follows the tensors the model held when it was made (updated in place by the optimisers,
even while data-parallel training wraps the networks and renames their state_dict keys), so make it
after the model is on its device and in its memory format.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class WeightAverage:
    """The moving average of `model`'s state_dict, updated after every optimisation step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.current = model.state_dict()  # detached views of the live parameters and buffers
        self.average = {name: value.detach().clone() for name, value in self.current.items()}

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the model's current weights."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        floats = [name for name, value in self.average.items() if value.is_floating_point()]
        torch._foreach_lerp_([self.average[n] for n in floats], [self.current[n] for n in floats], 1 - decay)
        for name, value in self.average.items():
            if not value.is_floating_point():
                value.copy_(self.current[name])

    @contextlib.contextmanager
    @torch.no_grad()
    def swapped_in(self) -> Iterator[None]:
        """The model holds the average inside the block, and its own weights again after it."""
        raw = {name: value.clone() for name, value in self.current.items()}
        for name, value in self.current.items():
            value.copy_(self.average[name])
        try:
            yield
        finally:
            for name, value in self.current.items():
                value.copy_(raw[name])

    def state_dict(self) -> dict[str, object]:
        """What the resume state keeps of the average."""
        return {"average": self.average, "updates": self.updates}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Continue the average of a resume state; its tensors go where this average's are."""
        for name, value in state["average"].items():
            self.average[name].copy_(value)
        self.updates = int(state["updates"])
