"""Hyper-parameter studies: a search space declared in parameters, an Optuna study on a shared storage, its plots.

The library knows nothing of Kedro or of how a trial trains: the caller gives `run_trials` an
objective (the tune pipeline's trains through the train pipeline's node) and reports each epoch
through `report_epochs`, which prunes.
"""

from pixelheal.tuning.plots import history_figure, importance_figure
from pixelheal.tuning.space import decode, parse_space, substitute, suggest
from pixelheal.tuning.study import StudyConfig, best_trial, open_study, report_epochs, run_trials

__all__ = [
    "StudyConfig",
    "best_trial",
    "decode",
    "history_figure",
    "importance_figure",
    "open_study",
    "parse_space",
    "report_epochs",
    "run_trials",
    "substitute",
    "suggest",
]
