"""`python -m pixelheal.app`: serve the PixelHeal web app locally, offline and without telemetry."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; the defaults suit running from the project root."""
    parser = argparse.ArgumentParser(prog="python -m pixelheal.app", description=__doc__)
    parser.add_argument("--models-dir", default="data/06_models", help="folder of trained checkpoints (*.pt)")
    parser.add_argument("--mlflow-uri", default=os.environ.get("PIXELHEAL_MLFLOW_URI", DEFAULT_TRACKING_URI),
                        help="MLflow tracking URI whose runs' checkpoints are offered too; 'none' to skip")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0 for the network)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--device", default="cpu", help="torch device for inference: cpu, cuda, mps or auto")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Build the app and serve it until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Set before gradio is imported: no usage analytics, no version check, no Hugging Face Hub calls.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    from pixelheal.app.service import InpaintService
    from pixelheal.app.ui import CSS, build_app

    tracking_uri = None if args.mlflow_uri.lower() == "none" else args.mlflow_uri
    # Created only when an MLflow checkpoint is first downloaded; shared across sessions, as a run's artifacts never change.
    cache_dir = Path(tempfile.gettempdir()) / "pixelheal-app-mlflow"
    service = InpaintService(args.models_dir, tracking_uri, cache_dir, args.device)
    build_app(service).launch(server_name=args.host, server_port=args.port, share=False, inbrowser=False,
                              ssr_mode=False, mcp_server=False, css=CSS)


if __name__ == "__main__":
    main()
