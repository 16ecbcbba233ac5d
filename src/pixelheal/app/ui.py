"""The Gradio page: checkpoint picker, image + painted mask, results of the chosen and of every checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import gradio as gr
from gradio.data_classes import FileData
from PIL import Image

from pixelheal.app.service import InpaintService
from pixelheal.app.uploads import UploadError, UploadLimits, check_upload, refusals

logger = logging.getLogger(__name__)

INTRO = """# PixelHeal
Pick a checkpoint, upload an image, then paint the hole on it (or upload a mask: white = hole) and press
**Inpaint**. Images are resized to each model's training size and back; known pixels are kept. Below the
result, every checkpoint of `{models_dir}` inpaints the same hole, and sampling architectures show several
completions."""

# Small training-size images are upscaled by the browser: show their pixels, not a blur.
DEFAULT_LIMITS = UploadLimits()

CSS = """
#result img, #mask-used img, #samples img, #comparison img { image-rendering: pixelated; }
#result img, #mask-used img { width: 100%; height: 100%; object-fit: contain; }
"""


def _checked(decode: Callable[[], Any], data: bytes | str | None, what: str, limits: UploadLimits, name: str) -> Any:
    """``decode()`` behind the checks of the upload ``data``: a refusal becomes one message on the page."""
    try:
        if data is not None:
            check_upload(data, what, limits, name)
        with refusals(what, name):
            return decode()
    except UploadError as error:
        raise gr.Error(str(error)) from None


class CheckedImage(gr.Image):
    """A gr.Image whose upload is checked against ``limits`` before Gradio decodes it."""

    is_template = True  # drawn by the page as a plain gr.Image
    limits = DEFAULT_LIMITS

    def preprocess(self, payload: Any) -> Any:
        name = getattr(payload, "orig_name", None) or "the uploaded file"
        return _checked(
            partial(super().preprocess, payload), getattr(payload, "path", None), self.elem_id, self.limits, name
        )


class CheckedImageMask(gr.ImageMask):
    """A gr.ImageMask whose image, layers and composite are each checked like :class:`CheckedImage`."""

    limits = DEFAULT_LIMITS

    def get_block_name(self) -> str:
        """gr.ImageMask's own front-end component: it is a template of gr.ImageEditor."""
        return "imageeditor"

    get_block_class = get_block_name  # the name in the page's config, likewise

    def convert_and_format_image(self, file: FileData | bytes | None, flatten_on_white: bool = False) -> Any:
        """Gradio's decoding of one file of an editor value (bytes sent by the page's canvas)."""
        if file is None:
            return None
        data, name = (file, "the uploaded image") if isinstance(file, bytes) else (file.path, file.orig_name)
        return _checked(
            partial(super().convert_and_format_image, file, flatten_on_white),
            data,
            self.elem_id,
            self.limits,
            name or "the uploaded image",
        )


def _inpaint_handler(service: InpaintService):
    """The click handler: user errors become one readable message on the page."""

    def handle(
        choice: str | None, editor: dict[str, Any] | None, mask: Image.Image | None, n_samples: float, seed: float
    ) -> tuple:
        try:
            out = service.run(choice, editor, mask, int(n_samples), int(seed or 0))
        except (ValueError, OSError) as error:
            raise gr.Error(str(error)) from None
        except Exception as error:  # shown, not swallowed: the traceback goes to the server log
            logger.exception("inpainting failed")
            raise gr.Error(f"unexpected error: {error}") from None
        return (
            out["mask"],
            out["result"],
            gr.Gallery(value=out["samples"], visible=bool(out["samples"])),
            out["comparison"],
            out["notes"],
        )

    return handle


def _refresh_handler(service: InpaintService):
    def refresh(current: str | None) -> Any:
        choices = service.choices()
        keys = [key for _, key in choices]
        return gr.Dropdown(choices=choices, value=current if current in keys else (keys[0] if keys else None))

    return refresh


def build_app(service: InpaintService, limits: UploadLimits = DEFAULT_LIMITS, keep_minutes: float = 60) -> gr.Blocks:
    """The page; serve it with `.launch(max_file_size=limits.max_bytes)`.

    Uploads and shown results live in Gradio's temp folder: files older than ``keep_minutes`` are
    deleted by a periodic sweep, and all of them when the server stops.
    """
    choices = service.choices()
    keep_s = max(1, round(keep_minutes * 60))
    with gr.Blocks(title="PixelHeal", analytics_enabled=False, delete_cache=(min(keep_s, 300), keep_s)) as app:
        gr.Markdown(INTRO.format(models_dir=service.models_dir))
        with gr.Row(equal_height=True):
            checkpoint = gr.Dropdown(
                choices=choices,
                value=choices[0][1] if choices else None,
                label="Checkpoint",
                info="the models folder, then registered model versions (MLflow registry), then MLflow runs",
                scale=4,
                elem_id="checkpoint",
            )
            refresh = gr.Button("Refresh list", scale=1, elem_id="refresh")
        with gr.Row():
            # contract: painted strokes (any alpha > 0) and white mask pixels are holes
            editor = CheckedImageMask(
                label="Image: upload, then paint the hole",
                type="pil",
                image_mode="RGBA",
                sources=["upload", "clipboard"],
                brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed"),
                height=420,
                elem_id="image",
                scale=2,
            )
            mask = CheckedImage(
                label="Mask (optional): white = hole, same size as the image",
                type="pil",
                image_mode="RGBA",
                sources=["upload"],
                height=420,
                elem_id="mask",
                scale=1,
            )
        editor.limits = mask.limits = limits
        with gr.Row():
            n_samples = gr.Slider(1, 8, value=4, step=1, label="Samples per sampling architecture", elem_id="samples-n")
            seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
        run = gr.Button("Inpaint", variant="primary", elem_id="run")
        notes = gr.Markdown(elem_id="notes")
        with gr.Row():
            mask_used = gr.Image(
                label="Mask used (white = hole)", format="png", interactive=False, height=320, elem_id="mask-used"
            )
            result = gr.Image(
                label="Inpainted by the chosen checkpoint",
                format="png",
                interactive=False,
                height=320,
                elem_id="result",
            )
        samples = gr.Gallery(
            label="Samples of the chosen checkpoint",
            format="png",
            columns=4,
            height=320,
            fit_columns=False,
            visible=False,
            elem_id="samples",
        )
        comparison = gr.Gallery(
            label=f"Every checkpoint in {service.models_dir}",
            format="png",
            columns=4,
            height=320,
            fit_columns=False,
            elem_id="comparison",
        )
        refresh.click(_refresh_handler(service), inputs=checkpoint, outputs=checkpoint)
        run.click(
            _inpaint_handler(service),
            inputs=[checkpoint, editor, mask, n_samples, seed],
            outputs=[mask_used, result, samples, comparison, notes],
        )
    return app
