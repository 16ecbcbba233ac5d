"""A study's pictures: the optimisation history and the hyper-parameter importances (optuna.visualization.matplotlib)."""

from __future__ import annotations

import warnings

import matplotlib
import optuna
from matplotlib.figure import Figure
from optuna.trial import TrialState

MIN_TRIALS_FOR_IMPORTANCE = 2  # completed trials: importances compare how the objective varies between them


def _plotted(plot: object, study: optuna.Study) -> Figure:
    # Optuna switches pyplot's global style to ggplot; rc_context gives other plots of the run theirs back.
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter(
            "ignore", optuna.exceptions.ExperimentalWarning
        )  # its matplotlib plots are "experimental"
        axes = plot(study)
    figure = axes.figure
    figure.set_size_inches(8, 5)
    figure.tight_layout()
    return figure


def history_figure(study: optuna.Study) -> Figure:
    """Every trial's value and the best value so far, by trial number."""
    return _plotted(optuna.visualization.matplotlib.plot_optimization_history, study)


def importance_reason(study: optuna.Study) -> str | None:
    """Why the study cannot rank its hyper-parameters yet, or None when it can."""
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(completed) < MIN_TRIALS_FOR_IMPORTANCE:
        return f"importances need {MIN_TRIALS_FOR_IMPORTANCE} completed trials; the study has {len(completed)}"
    varied = {
        name for trial in completed for name in trial.params if trial.params[name] != completed[0].params.get(name)
    }
    if not varied:
        return "importances need a hyper-parameter whose value differs between the completed trials"
    return None


def importance_figure(study: optuna.Study) -> Figure:
    """Each hyper-parameter's share of the objective's variation, or a figure saying why there is none yet."""
    reason = importance_reason(study)
    if reason is None:
        return _plotted(optuna.visualization.matplotlib.plot_param_importances, study)
    figure = Figure(figsize=(8, 5))
    figure.text(0.5, 0.5, f"No hyper-parameter importances: {reason}.", ha="center", va="center", wrap=True)
    return figure
