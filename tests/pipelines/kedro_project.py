"""A throw-away copy of the project configuration with tiny settings, run through the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

TINY = """
data_processing:
  source: {kind: sample, n_images: 160, crop_size: [32, 96], seed: 0}
  preprocessing: {image_size: 16, center_crop: null, color_mode: RGB, binarize: null}
  preview_count: 16
masks:
  generator: {kind: irregular, preset: medium, min_hole_fraction: 0.05, max_hole_fraction: 0.5}
  seed: 0
  batch_size: 32
  preview_count: 16
_training: &training
  {epochs: 2, batch_size: 32, optimizer: adam, lr: 0.01, betas: [0.9, 0.999], weight_decay: 0.0, device: cpu, seed: 0,
   flip: true, random_masks: null, select_on: val_psnr, num_workers: 0, threads: 1, time_budget_s: null, resume: false}
unet_frm:
  model: {kind: unet_frm, widths: [4, 8, 16], loss: mse, hole_weight: 5.0}
  training: {<<: *training}
unet_aspp:
  model: {kind: unet_aspp, widths: [4, 8, 16], dilations: [1, 2], loss: l1, hole_weight: 5.0}
  training: {<<: *training}
gan:
  model: {kind: gan, variant: hole_context, base_channels: 4, disc_channels: 4, context_ring: 0.06, crop_size: 16}
  training: {<<: *training, optimizer: adam, lr: 0.0002, betas: [0.5, 0.999],
             random_masks: {kind: box, hole_size: [0.12, 0.25], aspect: rect, margin: 0.05, context_ring: 0.06}}
pixelcnn:
  model: {kind: pixelcnn, hidden: 8, n_blocks: 1, cond_layers: 1, sampling: sample, temperature: 1.0}
  training: {<<: *training, select_on: val_nll_bpd}
rowrnn:
  model: {kind: rowrnn, embed_dim: 8, hidden: 8, n_layers: 1, sampling: sample, temperature: 1.0}
  training: {<<: *training, select_on: val_nll_bpd}
pixelheal:
  model: {kind: pixelheal, hidden: 4, n_layers: 1}
  training: {<<: *training}
evaluation: {batch_size: 64, device: cpu, grid_images: 4, samples_per_image: 2, point_samples: 2, seed: 0,
             lpips: default, lpips_net: alex, fid: none}
compare: {baselines: [telea, biharmonic], workers: 1}
"""


def make_project(root: Path) -> Path:
    """Copy conf/base and pyproject.toml into `root` and add the `tiny` environment."""
    shutil.copytree(PROJECT_ROOT / "conf" / "base", root / "conf" / "base")
    (root / "conf" / "local").mkdir()
    (root / "conf" / "tiny").mkdir()
    (root / "conf" / "tiny" / "parameters.yml").write_text(TINY)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "src").mkdir()  # the package itself is the installed one
    return root


def kedro(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the kedro CLI in `root` with an empty torch hub cache and no telemetry."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "TORCH_HOME": str(root / "torch_home")}
    kedro_cli = Path(sys.executable).with_name("kedro")
    return subprocess.run([str(kedro_cli), *args], cwd=root, env=env, capture_output=True, text=True, timeout=600)


def refusal_line(result: subprocess.CompletedProcess) -> str:
    """The last line of a refused run, after checking it failed without a traceback."""
    output = result.stderr + result.stdout
    assert result.returncode != 0
    assert "Traceback" not in output, output[-3000:]
    return result.stderr.strip().splitlines()[-1]
