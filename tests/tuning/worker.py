"""One worker of a shared study, run as its own process: `python -m tests.tuning.worker <storage> <n_trials>`.

Its first trial waits until another worker's trial exists, so two workers started together surely
overlap; it prints the numbers of the trials it ran, as JSON.
"""

from __future__ import annotations

import json
import sys
import time

import optuna

from pixelheal.tuning import StudyConfig, open_study, run_trials, suggest

SPACE = {"training": {"lr": {"kind": "log_float", "low": 1e-4, "high": 1e-1}}}
WAIT_S = 120  # for the other worker to start (imports on a busy machine)


def main(storage: str, n_trials: int) -> None:
    config = StudyConfig(space=SPACE, n_trials=n_trials, storage=storage, sampler={"kind": "random", "seed": 0})
    study = open_study(config, "shared", "minimize", "tune.worker")
    space = config.distributions()

    def objective(trial: optuna.Trial) -> float:
        deadline = time.monotonic() + WAIT_S
        while len(study.get_trials(deepcopy=False)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        return suggest(trial, space)["training.lr"]

    finished = run_trials(study, objective, config.n_trials, config.storage)
    print(json.dumps([trial.number for trial in finished]))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
