"""One "node" of a multi-node run, as its own process: `python -m tests.training.node_worker <job> <weights>`.

`<job>` is a pickle of `train_model`'s positional arguments (the training block says which node this
is); the returned checkpoint's weights are saved to `<weights>` with torch.save.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import torch

from pixelheal.pipelines.train.nodes import train_model


def main(job: Path, weights: Path) -> None:
    checkpoint, _ = train_model(*pickle.loads(job.read_bytes()))
    torch.save(checkpoint.model, weights)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
