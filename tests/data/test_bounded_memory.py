"""Ingestion of a folder several times larger than a memory budget stays within that budget (peak RSS measured)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

BUDGET_MB = 16  # what ingestion may add to the process's resident memory, whatever the data's size
SIZE, COUNT = 256, 400  # 400 RGB images of 256x256: 75 MiB of uint8 pixels, 4.7x the budget

MEASURE = """
import json, sys
from pixelheal.data.build import build_image_set
from pixelheal.data.folders import ImageFolderSource

def status_kib(key):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key + ":"))

source = ImageFolderSource(sys.argv[1])
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # reset the peak (VmHWM) to the current RSS: the imports' own peak is not the ingestion's
baseline = status_kib("VmRSS")
image_set = build_image_set(source, image_size=int(sys.argv[2]), progress=False)
peak = status_kib("VmHWM")
checksum = int(image_set.images[:, :, ::17, ::17].astype("int64").sum())
print(json.dumps({"added_mib": (peak - baseline) / 1024, "shape": list(image_set.images.shape), "checksum": checksum}))
"""


def test_ingesting_a_folder_larger_than_the_budget_keeps_peak_memory_below_it(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "big"
    folder.mkdir()
    checksum = 0
    for i in range(COUNT):
        pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:04d}.bmp")  # uncompressed: quick to write and to read
        checksum += int(pixels.transpose(2, 0, 1)[:, ::17, ::17].astype(np.int64).sum())
    assert COUNT * SIZE * SIZE * 3 > 4 * BUDGET_MB * 2**20
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(folder), str(SIZE)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["shape"] == [COUNT, 3, SIZE, SIZE]
    assert measured["checksum"] == checksum  # every image arrived, in order
    assert measured["added_mib"] < BUDGET_MB, measured
