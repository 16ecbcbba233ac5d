"""The file MLflow logs as the model's code ("models from code"): loading runs it instead of unpickling an object.

See `pixelheal.inference.mlflow_model`; the checkpoint is the model's artifact, read in `load_context`.
"""

from mlflow.models import set_model

from pixelheal.inference.mlflow_model import InpaintingPyfunc

set_model(InpaintingPyfunc())
