"""Project settings: https://docs.kedro.org/en/stable/kedro_project_setup/settings.html"""

from __future__ import annotations

from pixelheal.config_loader import ProjectConfigLoader
from pixelheal.hooks import ArchitectureRunHooks, PreflightHooks, UserErrorHooks
from pixelheal.lineage_hooks import LineageHooks
from pixelheal.tracking import TrackingHooks

# LineageHooks first: among the tryfirst hooks Kedro calls the later-listed first, so parameter and
# missing-input errors are reported before stale-input ones; all run before kedro-mlflow opens a run.
HOOKS = (LineageHooks(), PreflightHooks(), TrackingHooks(), ArchitectureRunHooks(), UserErrorHooks())
# TrackingHooks is kedro-mlflow's hook with this project's failure handling: the plugin's own
# instance would open a second MLflow run per `kedro run`.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)

CONFIG_LOADER_CLASS = ProjectConfigLoader
CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local"}
