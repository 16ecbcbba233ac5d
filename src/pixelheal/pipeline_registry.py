"""Project pipelines."""

from kedro.pipeline import Pipeline

from pixelheal.models import ARCHITECTURES
from pixelheal.pipelines import compare, data_processing, export, inpaint, masks, split, train, tune


def register_pipelines() -> dict[str, Pipeline]:
    """Every pipeline by name; `__default__` is everything except `inpaint`, `export` and the `tune_<arch>` studies."""
    pipelines = {
        "data_processing": data_processing.create_pipeline(),
        "masks": masks.create_pipeline(),
        "split": split.create_pipeline(),
        **{f"train_{arch}": train.create_pipeline(arch) for arch in ARCHITECTURES},
        "compare": compare.create_pipeline(list(ARCHITECTURES)),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    pipelines["inpaint"] = inpaint.create_pipeline()  # after __default__: it needs the user's own images
    pipelines["export"] = export.create_pipeline()  # after __default__ too: it needs a trained checkpoint
    pipelines |= {f"tune_{arch}": tune.create_pipeline(arch) for arch in ARCHITECTURES}  # studies: on demand
    return pipelines
