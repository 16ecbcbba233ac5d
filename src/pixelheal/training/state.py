"""Training's resume state: written after every finished epoch, checked before `resume: true` continues from it.

The state holds the model and optimiser states after the last finished epoch, the history, the best
epoch so far and whatever the caller adds to identify the run (the train node adds the architecture
and its hyper-parameters). A state that is unreadable, foreign, incomplete or written for another
architecture or other hyper-parameters is refused with one line naming the file and what does not
match, never half-loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pixelheal.models.base import InpaintingModel
from pixelheal.models.checkpoint import TRAIN_STATE_FORMAT, load_weights
from pixelheal.storage import write_atomically
from pixelheal.training.ema import WeightAverage

FIX = "delete it or set resume: false"
_REQUIRED = ("model", "optimizers", "history", "best", "epochs_done")


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write the resume state atomically, so a kill mid-write never corrupts the last good one."""
    write_atomically(path, lambda tmp: torch.save({"format": TRAIN_STATE_FORMAT, **state}, tmp))


def require_state(state_path: Path | None, where: str) -> None:
    """Refuse `resume: true` without a state to resume from, instead of silently starting afresh."""
    if state_path is None or not state_path.is_file():
        raise ValueError(
            f"{where}.resume: true, but there is nothing to resume: no training state at {state_path}; "
            "set resume: false to train from the start"
        )


def resume_state(
    model: InpaintingModel,
    optimizers: dict[str, torch.optim.Optimizer],
    config: dict[str, Any],
    epochs_done: int,
    history: list[dict[str, float]],
    best: dict[str, Any],
    extra: dict[str, Any] | None,
    average: WeightAverage | None = None,
) -> dict[str, Any]:
    """Everything `resume: true` needs to continue after `epochs_done` epochs: the raw weights and their average."""
    return {
        **(extra or {}),
        "model": model.state_dict(),
        "average": None if average is None else average.state_dict(),
        "epochs_done": epochs_done,
        "history": history,
        "best": best,
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "config": config,
    }


def load_state(path: Path, device: torch.device) -> dict[str, Any]:
    """The resume state in `path`, refused with one line unless training wrote it."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # truncated, not a torch file, or one pickling arbitrary objects (never run)
        raise ValueError(
            f"{path} is not a readable PixelHeal training state (truncated or not plain torch data: "
            f"{type(error).__name__}); {FIX}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        raise ValueError(f"{path} is not a PixelHeal training state (no {TRAIN_STATE_FORMAT!r} marker); {FIX}")
    missing = [key for key in _REQUIRED if key not in state]
    if missing:
        raise ValueError(f"{path} is an incomplete PixelHeal training state: it lacks {missing}; {FIX}")
    return state


def _difference(found: Any, expected: Any) -> str:
    """The first difference between a stored value and this run's, e.g. `widths is [4, 8] there, [8] here`."""
    if isinstance(found, Mapping) and isinstance(expected, Mapping):
        for key in sorted({*found, *expected}, key=str):
            if found.get(key) != expected.get(key):
                return f"{key} is {found.get(key)!r} there, {expected.get(key)!r} in this run"
    return f"{found!r} there, {expected!r} in this run"


def check_state_matches(state: Mapping[str, Any], expected: Mapping[str, Any], path: Path) -> None:
    """Refuse a state whose identifying entries (e.g. `arch`, `hparams`) differ from this run's."""
    for key, value in expected.items():
        if state.get(key) != value:
            raise ValueError(
                f"{path}: this training state was written for another {key}: {_difference(state.get(key), value)}; "
                f"{FIX}"
            )


def read_state(path: Path, device: torch.device, expected: Mapping[str, Any]) -> dict[str, Any]:
    """The state in `path` once it is checked against this run's identifying entries (`expected`)."""
    state = load_state(path, device)
    check_state_matches(state, expected, path)
    return state


def apply_state(
    state: Mapping[str, Any],
    model: InpaintingModel,
    optimizers: dict[str, torch.optim.Optimizer],
    average: WeightAverage | None,
    path: Path | None,
) -> None:
    """Load a checked state into `model`, `optimizers` and `average`; `path` (the state's file) is named in errors.

    A state written without a weight average starts this run's average from the resumed weights.
    """
    try:
        load_weights(model, state["model"], str(path))
    except ValueError as error:
        raise ValueError(f"{error}; {FIX}") from None
    try:
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
    except (KeyError, ValueError, TypeError) as error:  # torch's messages are one line; a missing name is a key
        raise ValueError(f"{path}: the optimiser state does not fit this model ({error!s}); {FIX}") from None
    if average is not None:
        saved = state.get("average")
        average.load_state_dict(saved if saved is not None else {"average": average.current, "updates": 0})
