"""Simulated kills for resume tests: a model whose training step dies at a given step."""

from pixelheal.models import InpaintingModel


class Killed(Exception):
    """Stands in for the process being killed."""


def die_at_step(model: InpaintingModel, step: int) -> None:
    """Make the `step`-th call (1-based) of `model.training_step` raise Killed."""
    calls = {"n": 0}
    original = model.training_step

    def dying_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == step:
            raise Killed
        return original(*args, **kwargs)

    model.training_step = dying_step
