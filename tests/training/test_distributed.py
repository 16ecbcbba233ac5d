"""Data-parallel training (gloo on loopback): the same weights as one process, sharding, faults, resume.

Tolerances: without BatchNorm (unconditional pixelcnn) world_size 2 equals world_size 1 up to float
summation order (1e-5). With BatchNorm (unet_frm, the GAN's discriminator) each CPU rank normalises
its own half-batch (torch's SyncBatchNorm runs on CUDA only), so the weights differ by a few percent
of how far training moved them; the tests train those with plain SGD, where that difference is
proportional to the gradients' (Adam rescales every gradient to a step of about lr, whatever its size).
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelheal.models import make_model
from pixelheal.pipelines.train.nodes import train_model, training_parameters
from pixelheal.training.data import EpochBatches, portable
from pixelheal.training.distributed import RankFailedError, free_port
from tests.conftest import PROJECT_ROOT

SPLITS = {"train": list(range(32)), "val": list(range(32, 40)), "test": list(range(40, 48))}
SGD = {"optimizer": "sgd", "lr": 0.05, "betas": [0.0, 0.999]}  # betas[0] is SGD's momentum: none
BOX = {"kind": "box", "hole_size": [0.12, 0.25], "aspect": "rect", "margin": 0.05, "context_ring": 0.06}
GAN = {"kind": "gan", "base_channels": 4, "disc_channels": 4, "context_ring": 0.06, "crop_size": 16}
CASES = {  # model block, training settings, tolerance: max abs difference or relative to the training's movement
    "pixelcnn": ({"kind": "pixelcnn", "hidden": 8, "n_blocks": 1, "conditional": False}, {"select_on": "val_nll_bpd"}),
    "unet_frm": ({"kind": "unet_frm", "widths": [4, 8]}, SGD),
    "gan": (GAN | {"blocks": "faithful"}, SGD | {"lr": 0.01, "random_masks": BOX}),
}


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 3, 16, 16), dtype=np.uint8)
    return images, (rng.random((48, 1, 16, 16)) < 0.3).astype(np.uint8)


def _training(world_size: int, **settings) -> dict:
    distributed = {"world_size": world_size, "master_port": 0, "timeout_s": 60}
    return {"epochs": 2, "batch_size": 8, "device": "cpu", "threads": 1, "distributed": distributed} | settings


def _flat(state: dict, keys: list[str]) -> torch.Tensor:
    return torch.cat([state[key].flatten().double() for key in keys])


def _untrained(block: dict) -> dict:
    torch.manual_seed(0)
    return make_model(block["kind"], in_channels=3, **{k: v for k, v in block.items() if k != "kind"}).state_dict()


def test_ranks_share_each_global_batch_with_the_same_images_holes_and_flips():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (20, 3, 8, 8), dtype=np.uint8)
    masks = (rng.random((20, 1, 8, 8)) < 0.5).astype(np.uint8)

    def batches(rank: int, world_size: int) -> EpochBatches:
        return EpochBatches(
            images, masks, np.arange(20), 7, seed=3, epoch=1, flip=True, rank=rank, world_size=world_size
        )

    whole = batches(0, 1)
    parts = [batches(rank, 3) for rank in range(3)]
    assert len(whole) == 3 and all(len(p) == 3 for p in parts)  # batches of 7, 7, 6: none dropped
    for b in range(len(whole)):
        x, m = whole[b]
        shares = [p[b] for p in parts]
        assert [len(s[0]) for s in shares] == ([3, 2, 2] if len(x) == 7 else [2, 2, 2])
        assert torch.equal(torch.cat([s[0] for s in shares]), x)  # flips drawn for the global batch
        assert torch.equal(torch.cat([s[1] for s in shares]), m)


def test_a_last_batch_smaller_than_the_world_is_dropped():
    images, masks = np.zeros((5, 3, 4, 4), np.uint8), np.zeros((5, 1, 4, 4), np.uint8)
    assert len(EpochBatches(images, masks, np.arange(5), 4, seed=0, epoch=0, world_size=2)) == 1
    assert len(EpochBatches(images, masks, np.arange(5), 4, seed=0, epoch=0)) == 2


def test_memory_mapped_arrays_travel_to_workers_and_ranks_as_their_file(tmp_path):
    np.save(tmp_path / "images.npy", np.arange(4 * 3 * 64 * 64, dtype=np.uint8).reshape(4, 3, 64, 64))
    images = np.load(tmp_path / "images.npy", mmap_mode="r")
    masks = np.zeros((4, 1, 64, 64), np.uint8)
    batches = EpochBatches(images, masks, np.arange(4), 2, seed=0, epoch=0)
    payload = pickle.dumps(batches)
    assert len(payload) < masks.nbytes + 2048  # the masks (an in-memory array) travel; the mapped images do not
    copy = pickle.loads(payload)
    assert isinstance(copy.images, np.memmap) and np.array_equal(copy.images, images)
    assert torch.equal(copy[0][0], batches[0][0])
    assert isinstance(portable(images[1:]), np.ndarray)  # a view is no whole file: it travels as data


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"world_size": 3, "nnodes": 2}, r"distributed\.world_size: must be a multiple of nnodes \(2\)"),
        ({"world_size": 2, "nnodes": 2, "node_rank": 2}, r"distributed\.node_rank: must be in \[0, 2\), got 2"),
        ({"world_size": 2, "nnodes": 2, "master_port": 0}, r"distributed\.master_port: 0 \(a free port\) only"),
        ({"backend": "mpi"}, r"distributed\.backend: expected one of \['auto', 'gloo', 'nccl'\], got 'mpi'"),
        ({"world_sise": 2}, r"distributed\.world_sise: unknown parameter"),
    ],
)
def test_an_invalid_distributed_block_names_its_key(block, message):
    with pytest.raises(ValueError, match=rf"^unet_frm\.training\.{message}"):
        training_parameters({"distributed": block}, "unet_frm.training")


def test_an_architecture_without_named_networks_is_refused_before_any_rank_starts(data, tmp_path):
    model = {"kind": "rowrnn", "embed_dim": 8, "hidden": 8, "n_layers": 1}
    with pytest.raises(ValueError, match=r"^rowrnn\.training\.distributed\.world_size: rowrnn cannot train data-par"):
        train_model(*data, SPLITS, model, _training(2, select_on="val_nll_bpd"), tmp_path / "s.pt")
    assert not (tmp_path / "s.pt").exists()


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(CASES))
def test_two_ranks_train_the_weights_of_one_process_with_the_same_global_batch(data, tmp_path, arch):
    block, settings = CASES[arch]
    init = _untrained(block)
    one, _ = train_model(*data, SPLITS, block, _training(1, **settings), tmp_path / "one.pt")
    two, _ = train_model(*data, SPLITS, block, _training(2, **settings), tmp_path / "two.pt")
    keys = [k for k, v in init.items() if v.is_floating_point() and "running_" not in k]  # BN buffers: rank 0's
    w0, w1, w2 = (_flat(state, keys) for state in (init, one.model, two.model))
    assert (w1 - w0).abs().max() > 1e-4  # training moved the weights, so equal weights mean something
    if arch == "pixelcnn":
        assert (w2 - w1).abs().max() < 1e-5
    else:
        assert (w2 - w1).norm() < 0.1 * (w1 - w0).norm()
    assert [r["epoch"] for r in two.history] == [1, 2] and one.epoch == two.epoch
    assert two.history[-1]["train_loss"] == pytest.approx(one.history[-1]["train_loss"], rel=1e-2)


@pytest.mark.slow  # two real processes, each importing torch
def test_two_nodes_on_loopback_train_the_weights_of_one_process(data, tmp_path):
    block, settings = CASES["pixelcnn"]
    port = free_port()
    nodes = []
    try:
        for node_rank in range(2):  # node 0 hosts the rendezvous at 127.0.0.1:port, node 1 joins it
            node = tmp_path / f"node{node_rank}"
            node.mkdir()
            distributed = {"world_size": 2, "nnodes": 2, "node_rank": node_rank, "master_addr": "127.0.0.1"}
            training = _training(2, **settings) | {"distributed": distributed | {"master_port": port, "timeout_s": 60}}
            (node / "job.pkl").write_bytes(pickle.dumps((*data, SPLITS, block, training, node / "state.pt")))
            command = [sys.executable, "-m", "tests.training.node_worker", str(node / "job.pkl"), str(node / "w.pt")]
            with (node / "log.txt").open("w") as log:
                nodes.append(subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT))
        one, _ = train_model(*data, SPLITS, block, _training(1, **settings), tmp_path / "one.pt")  # while they run
        for node_rank, process in enumerate(nodes):
            assert process.wait(timeout=120) == 0, (tmp_path / f"node{node_rank}" / "log.txt").read_text()
    finally:
        for process in nodes:  # a failed assertion or a hang leaves nothing running
            if process.poll() is None:
                process.kill()
                process.wait()
    init = _untrained(block)
    keys = [k for k, v in init.items() if v.is_floating_point()]
    w0, w1 = _flat(init, keys), _flat(one.model, keys)
    node0, node1 = (_flat(torch.load(tmp_path / n / "w.pt", weights_only=True), keys) for n in ("node0", "node1"))
    assert (w1 - w0).abs().max() > 1e-4  # training moved the weights, so equal weights mean something
    assert torch.equal(node0, node1)  # both nodes return rank 0's checkpoint
    assert (node0 - w1).abs().max() < 1e-5
    assert (tmp_path / "node0" / "state.pt").exists() and not (tmp_path / "node1" / "state.pt").exists()


def _spawned_ranks() -> list[int]:
    """PIDs of this process's children started by multiprocessing spawn (the ranks, not the resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_a_killed_rank_fails_the_node_in_one_line_and_resume_finishes_with_another_world_size(data, tmp_path):
    block, settings = CASES["unet_frm"]
    state = tmp_path / "unet_frm.state.pt"
    killed = []

    def kill_rank_1_after_epoch_1() -> None:  # the state file appears once epoch 1 is done: kill in epoch 2
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (state.exists() and _spawned_ranks()):
            time.sleep(0.02)
        for pid in _spawned_ranks():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    killer = threading.Thread(target=kill_rank_1_after_epoch_1)
    killer.start()
    with pytest.raises(RankFailedError) as error:
        train_model(*data, SPLITS, block, _training(2, epochs=4, **settings), state)
    killer.join()
    assert killed
    assert str(error.value) == "unet_frm.training.distributed: rank 1 died (killed by SIGKILL)"
    assert not _spawned_ranks()  # nothing left running
    done = torch.load(state, weights_only=True)["epochs_done"]
    assert 1 <= done < 4
    resumed, _ = train_model(*data, SPLITS, block, _training(1, epochs=4, resume=True, **settings), state)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
