"""Node of the export pipeline: check the `export:` block, export the checkpoint, verify the files against PyTorch."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pixelheal.config import named, parse, require
from pixelheal.inference import load_inpainter, resolve_checkpoint
from pixelheal.inference.export import FORMATS, SUFFIXES, check_export, export_model, plan_export

logger = logging.getLogger(__name__)

WHERE = "export"  # the parameter block the node reads: `params:export`


@dataclass(frozen=True)
class ExportParameters:
    """The `export:` block; conf/base/parameters_export.yml documents every key."""

    model: str  # an architecture key (→ <models_dir>/<key>.pt) or a checkpoint path
    models_dir: str
    format: Literal["onnx", "torchscript", "both"]
    tolerance: float
    seed: int

    def __post_init__(self) -> None:
        require(self.tolerance > 0, "tolerance", f"must be positive, got {self.tolerance}")

    @property
    def formats(self) -> tuple[str, ...]:
        return FORMATS if self.format == "both" else (self.format,)


def export_parameters(block: Any, where: str = WHERE) -> ExportParameters:
    """The `export:` block checked once; every error names `<where>.<key>` (e.g. `export.format`)."""
    return parse(ExportParameters, block, where)


def export_checkpoint(export: dict[str, Any]) -> dict[str, bytes]:
    """`export.model` as `<checkpoint name>.onnx` / `.torchscript` files, each checked against PyTorch first.

    Returns the files by name for the `exported_models` dataset; a refusal or a failed check raises
    before anything is returned, so no file is written.
    """
    params = export_parameters(export)
    with named(WHERE):
        path = resolve_checkpoint(params.model, params.models_dir)
    inpainter = load_inpainter(path, "cpu")  # exported graphs are traced on the CPU
    with named(WHERE):
        plan = plan_export(inpainter.model, inpainter.arch, inpainter.image_size)
    files = {}
    for fmt in params.formats:
        data = export_model(plan, fmt, inpainter.channels, plan.metadata(inpainter.arch))
        try:
            differences = check_export(
                data, fmt, plan, inpainter.channels, tolerance=params.tolerance, seed=params.seed
            )
        except ValueError as error:
            raise ValueError(f"{WHERE}.model: {path}: {error}; nothing was written") from None
        name = Path(path).stem + SUFFIXES[fmt]
        logger.info("exported %s to %s (max abs difference to PyTorch: %s)", path, name, differences)
        files[name] = data
    if not plan.dynamic:
        logger.info("%s takes %dx%d images only: %s", path, *plan.image_size, plan.fixed_reason)
    return files
