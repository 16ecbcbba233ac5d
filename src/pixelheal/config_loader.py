"""The project's configuration loader: Kedro's OmegaConfigLoader with `--params` merged into their blocks."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader


class UnknownEnvironmentError(SystemExit):
    """`--env` (or KEDRO_ENV) names no folder of conf/; exits with one line listing the existing ones."""


def merge_runtime(configured: Mapping[str, Any], runtime: Mapping[str, Any]) -> dict[str, Any]:
    """`configured` with the runtime parameters merged in key by key (a copy; neither input changes).

    A runtime `kind` that differs from the configured one starts its block afresh: the configured
    keys belong to the configured kind (the sample source's `n_images` means nothing to an
    `image_folder` source), and the chosen kind's builder supplies its own defaults.
    """
    merged = copy.deepcopy(dict(configured))
    if "kind" in runtime and merged.get("kind", runtime["kind"]) != runtime["kind"]:
        merged = {}
    for key, value in runtime.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_runtime(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class ProjectConfigLoader(OmegaConfigLoader):
    """Kedro's OmegaConfigLoader with `--params` merged after conf/base and conf/<env>, key by key.

    Kedro merges the runtime parameters into base and into the environment separately, and an
    environment's block then replaces base's whole: under `--env=cifar10_cpu`, `--params
    inpaint.model=unet_frm` left an `inpaint` block holding `model` alone. Here the environment
    replaces base's blocks as before, then the runtime parameters merge into the result.
    (The `${runtime_params:...}` resolver thus sees no runtime values in parameter files; they use
    YAML anchors, not that resolver.)
    """

    def __init__(self, conf_source: str | Path, env: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(conf_source, env, *args, **kwargs)
        conf = Path(conf_source)
        if env and conf.is_dir() and not (conf / env).is_dir():
            existing = ", ".join(sorted(p.name for p in conf.iterdir() if p.is_dir()))
            raise UnknownEnvironmentError(
                f"Unknown environment {env!r} (--env): there is no {conf.name}/{env} folder; existing: {existing}"
            )

    def configured_parameters(self) -> dict[str, Any]:
        """The parameters of conf/base and conf/<env>, without the runtime ones."""
        runtime, self.runtime_params = self.runtime_params, {}
        try:
            return super().__getitem__("parameters")
        finally:
            self.runtime_params = runtime

    def __getitem__(self, key: str) -> Any:
        if key != "parameters" or key in self or not self.runtime_params:
            return super().__getitem__(key)
        return merge_runtime(self.configured_parameters(), self.runtime_params)
