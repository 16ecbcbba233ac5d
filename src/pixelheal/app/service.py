"""What the web app does, without any UI: pick checkpoints, read the painted mask, inpaint with one or all."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixelheal.app.checkpoints import list_checkpoints, local_checkpoints, resolve_choice
from pixelheal.data.transforms import to_8bit
from pixelheal.inference import Inpainter, inpaint_samples, load_inpainter
from pixelheal.masks.files import binarize_mask, mask_values

logger = logging.getLogger(__name__)

Captioned = tuple[Image.Image, str]


def editor_image_and_mask(
    editor: dict[str, Any] | None, uploaded_mask: Image.Image | None
) -> tuple[Image.Image, np.ndarray]:
    """The image of an image-editor value and its hole: painted strokes united with an uploaded mask.

    contract: the returned mask is (H, W) uint8 with 1 = hole, at the background's size.
    """
    background = (editor or {}).get("background")
    if background is None:
        raise ValueError("image: upload an image first")
    image = to_8bit(background).convert("RGB")  # transparency and 16 bits: as training ingestion reads them
    hole = np.zeros((image.height, image.width), bool)
    for layer in editor.get("layers") or []:
        if layer is not None:
            # Any painted pixel is a hole, soft brush edges included: they are meant as "remove this".
            alpha = np.asarray(layer.convert("RGBA").resize(image.size, Image.Resampling.NEAREST))[..., 3]
            hole |= alpha > 0
    if uploaded_mask is not None:
        if uploaded_mask.size != image.size:
            raise ValueError(
                f"mask: the uploaded mask is {uploaded_mask.width}x{uploaded_mask.height} "
                f"but the image is {image.width}x{image.height}"
            )
        hole |= binarize_mask(mask_values(uploaded_mask), "uploaded mask").astype(bool)
    if not hole.any():
        raise ValueError("mask: paint the hole on the image, or upload a mask (white = hole)")
    return image, hole.astype(np.uint8)


class InpaintService:
    """Checkpoint choices and cached models for the app; every method takes and returns plain images."""

    def __init__(
        self, models_dir: str | Path, tracking_uri: str | None, cache_dir: str | Path, device: str = "cpu"
    ) -> None:
        self.models_dir, self.tracking_uri = Path(models_dir), tracking_uri
        self.cache_dir, self.device = Path(cache_dir), device
        self._models: dict[tuple[str, int], Inpainter] = {}

    def choices(self) -> list[tuple[str, str]]:
        """(label, key) of every checkpoint: the models folder, then registered model versions, then MLflow runs."""
        return [(c.label, c.key) for c in list_checkpoints(self.models_dir, self.tracking_uri)]

    def inpainter(self, path: Path) -> Inpainter:
        """The model of a checkpoint file, loaded once per file version."""
        key = (str(path.resolve()), path.stat().st_mtime_ns)
        if key not in self._models:
            self._models[key] = load_inpainter(path, self.device)
        return self._models[key]

    def inpaint_with(
        self, choice: str | None, image: Image.Image, mask: np.ndarray, n_samples: int, seed: int
    ) -> list[Image.Image]:
        """Completions by the chosen checkpoint (one for deterministic architectures)."""
        if not choice:
            raise ValueError(f"checkpoint: none chosen; train one with `kedro run` so it appears in {self.models_dir}")
        path = resolve_choice(choice, self.tracking_uri, self.cache_dir)
        return inpaint_samples(self.inpainter(path), image, mask, n_samples, seed)

    def compare(
        self, image: Image.Image, mask: np.ndarray, n_samples: int, seed: int
    ) -> tuple[list[Captioned], list[str]]:
        """Every local checkpoint's completions, captioned; plus one problem line per checkpoint that failed."""
        results: list[Captioned] = []
        problems: list[str] = []
        for path in local_checkpoints(self.models_dir):
            try:
                inpainter = self.inpainter(path)
                samples = inpaint_samples(inpainter, image, mask, n_samples, seed)
            except (ValueError, OSError) as error:  # one unusable checkpoint must not hide the others
                problems.append(f"{path.name}: {error}")
                continue
            name = inpainter.arch if inpainter.arch == path.stem else f"{inpainter.arch} ({path.stem})"
            results += [(s, name if len(samples) == 1 else f"{name} · sample {i + 1}") for i, s in enumerate(samples)]
        return results, problems

    def run(
        self,
        choice: str | None,
        editor: dict[str, Any] | None,
        uploaded_mask: Image.Image | None,
        n_samples: int,
        seed: int,
    ) -> dict[str, Any]:
        """Everything the page shows after "Inpaint": mask used, result, its samples, the comparison, notes."""
        image, mask = editor_image_and_mask(editor, uploaded_mask)
        samples = self.inpaint_with(choice, image, mask, int(n_samples), int(seed))
        comparison, problems = self.compare(image, mask, int(n_samples), int(seed))
        notes = [
            f"{image.width}x{image.height} image, {mask.mean():.1%} hole; resized to each model's training size "
            "and back, known pixels kept."
        ] + [f"Skipped {p}" for p in problems]
        return {
            "mask": Image.fromarray(mask * 255),
            "result": samples[0],
            "samples": [(s, f"sample {i + 1}") for i, s in enumerate(samples)] if len(samples) > 1 else [],
            "comparison": comparison,
            "notes": "\n\n".join(notes),
        }
