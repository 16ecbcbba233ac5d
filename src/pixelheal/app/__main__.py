"""`python -m pixelheal.app`: serve the PixelHeal web app locally, offline and without telemetry."""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pixelheal.app.uploads import UploadLimits

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def _positive(text: str) -> float:
    """An option's value that must be a number above zero (argparse names the option in its error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def _port(text: str) -> int:
    """The `--port` value: a TCP port number (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 65535, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 1 to 65535, got {value}")
    return value


def require_free_port(host: str, port: int) -> None:
    """Exit with one line when the app could not serve on `host:port` (Gradio would raise a traceback).

    Checked before the app is built, by binding as the server will (address reuse on, so a port
    whose last connections linger in TIME_WAIT is not refused).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            if os.name != "nt":  # on Windows the option would let the probe share a port in use
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except socket.gaierror as error:
        raise SystemExit(f"--host {host}: cannot serve on {host}:{port} ({error.strerror})") from None
    except OSError as error:
        reason = "already in use" if error.errno == errno.EADDRINUSE else error.strerror or str(error)
        raise SystemExit(
            f"--port {port}: cannot serve on {host}:{port} ({reason}); choose another with --port"
        ) from None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; the defaults suit running from the project root."""
    parser = argparse.ArgumentParser(prog="python -m pixelheal.app", description=__doc__)
    parser.add_argument("--models-dir", default="data/06_models", help="folder of trained checkpoints (*.pt)")
    parser.add_argument(
        "--mlflow-uri",
        default=os.environ.get("PIXELHEAL_MLFLOW_URI", DEFAULT_TRACKING_URI),
        help="MLflow tracking URI whose runs' checkpoints are offered too; 'none' to skip",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0 for the network)")
    parser.add_argument("--port", type=_port, default=7860, help="TCP port to serve on (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device for inference: cpu, cuda, mps or auto")
    parser.add_argument(
        "--max-upload-mb",
        type=_positive,
        default=UploadLimits.max_mb,
        help="largest image or mask file accepted, in MB (default: %(default)g)",
    )
    parser.add_argument(
        "--max-megapixels",
        type=_positive,
        default=UploadLimits.max_megapixels,
        help="most pixels an uploaded image may have, in millions (default: %(default)g)",
    )
    parser.add_argument(
        "--keep-files-minutes",
        type=_positive,
        default=60,
        help="uploads and results are deleted from Gradio's temp folder after this many minutes, "
        "and all of them when the app stops (default: %(default)g)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Build the app and serve it until interrupted."""
    args = parse_args(argv)
    require_free_port(args.host, args.port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Set before gradio is imported: no usage analytics, no version check, no Hugging Face Hub calls.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    from pixelheal.app.service import InpaintService
    from pixelheal.app.ui import CSS, build_app

    tracking_uri = None if args.mlflow_uri.lower() == "none" else args.mlflow_uri
    # Created only when an MLflow checkpoint is first downloaded; shared across sessions, as a run's
    # artifacts never change.
    cache_dir = Path(tempfile.gettempdir()) / "pixelheal-app-mlflow"
    service = InpaintService(args.models_dir, tracking_uri, cache_dir, args.device)
    limits = UploadLimits(args.max_upload_mb, args.max_megapixels)
    app = build_app(service, limits, args.keep_files_minutes)
    app.launch(
        server_name=args.host,
        server_port=args.port,
        share=False,
        inbrowser=False,
        ssr_mode=False,
        mcp_server=False,
        css=CSS,
        max_file_size=limits.max_bytes,
    )


if __name__ == "__main__":
    main()
