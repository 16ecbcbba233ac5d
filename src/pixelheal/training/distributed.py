"""Data-parallel training on torch.distributed: the `training.distributed` block, the ranks and their launch.

A Kedro node runs once, so the ranks are started from inside the train node (not by running
`kedro run` N times, which would train N times and race the MLflow hooks): local rank 0 runs in
the node's own process, so the node returns one checkpoint and its callbacks and the tracking
hooks see one run; local ranks 1..k-1 are processes started with `torch.multiprocessing` (spawn).
With `nnodes > 1`, the same node runs on every machine with its `node_rank`, and all ranks meet at
`master_addr:master_port` (a TCP rendezvous hosted by global rank 0).

Each rank trains the model with its networks wrapped in `DistributedDataParallel` (gloo on CPU,
nccl on CUDA, where BatchNorm becomes SyncBatchNorm). torch's SyncBatchNorm does not run on CPU,
so with gloo every rank normalises its own share of the batch (the only difference from one process
besides float summation order). Collectives time out after `timeout_s`, so a rank that dies or
hangs ends the run with one line naming it instead of a hang.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeVar

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from pixelheal.config import require
from pixelheal.models.base import InpaintingModel

T = TypeVar("T")
Backend = Literal["auto", "gloo", "nccl"]
RANK_FAILURES = (mp.ProcessRaisedException, mp.ProcessExitedException)  # how torch reports a started rank's end
STOP_GRACE_S = 10.0  # how long stopped ranks get to exit (and a failed one to report) before they are killed


@dataclass(frozen=True)
class DistributedConfig:
    """A `training.distributed` block; `world_size: 1` (the default) trains in the node's process as before."""

    world_size: int = 1  # ranks in all, over every node: world_size / nnodes per node (one per GPU)
    backend: Backend = "auto"  # auto: nccl on CUDA, gloo on CPU
    nnodes: int = 1
    node_rank: int = 0  # this machine's index, 0 on the one at master_addr
    master_addr: str = "127.0.0.1"
    master_port: int = 29500  # 0: a free port (one node only)
    timeout_s: float = 1800.0  # collectives: must exceed rank 0's validation and checkpoint writing

    def __post_init__(self) -> None:
        for name in ("world_size", "nnodes"):
            require(getattr(self, name) >= 1, name, f"must be at least 1, got {getattr(self, name)}")
        require(
            self.world_size % self.nnodes == 0,
            "world_size",
            f"must be a multiple of nnodes ({self.nnodes}): every node runs world_size / nnodes ranks",
        )
        require(0 <= self.node_rank < self.nnodes, "node_rank", f"must be in [0, {self.nnodes}), got {self.node_rank}")
        require(0 <= self.master_port < 65536, "master_port", f"must be in [0, 65535], got {self.master_port}")
        require(
            self.master_port > 0 or self.nnodes == 1,
            "master_port",
            "0 (a free port) only works on one node: the other nodes must know the port",
        )
        require(self.timeout_s > 0, "timeout_s", f"must be positive, got {self.timeout_s}")

    @property
    def local_size(self) -> int:
        """Ranks on each node."""
        return self.world_size // self.nnodes


class RankFailedError(RuntimeError):
    """A rank of a data-parallel run died or raised; the message names the rank and its error in one line."""


@dataclass(frozen=True)
class Ranks:
    """This process's place among the ranks; `Ranks()` is the single-process run, where every collective is a no-op."""

    rank: int = 0
    world_size: int = 1
    device: torch.device | None = None  # the device this rank trains on (cuda:<local rank> with nccl)

    @property
    def leader(self) -> bool:
        """Global rank 0: the one that validates, checkpoints, writes the resume state and reports."""
        return self.rank == 0

    def broadcast(self, value: T) -> T:
        """Rank 0's `value` on every rank (any picklable object)."""
        if self.world_size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0, device=self._comm_device())
        return box[0]

    def sum(self, values: Mapping[str, float]) -> dict[str, float]:
        """Each value summed over the ranks (same keys, same order on every rank)."""
        if self.world_size == 1:
            return dict(values)
        summed = torch.tensor(list(values.values()), dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(summed)
        return dict(zip(values, summed.tolist()))

    def check_in_sync(self, model: nn.Module, where: str) -> None:
        """Refuse weights that differ between ranks: a network run outside its DDP wrapper is never averaged."""
        if self.world_size == 1:
            return
        params = [p.detach().double() for p in model.parameters()]
        checksum = torch.stack([sum(p.sum() for p in params), sum(p.abs().sum() for p in params)])
        gathered = [torch.zeros_like(checksum) for _ in range(self.world_size)]
        dist.all_gather(gathered, checksum.to(self._comm_device()))
        drifted = [r for r, other in enumerate(gathered) if not torch.equal(other.cpu(), gathered[0].cpu())]
        if drifted:
            raise RankFailedError(
                f"{where}: the weights of rank(s) {drifted} differ from rank 0's: the model runs a network "
                "outside the ones its `networks()` names for DistributedDataParallel; set distributed.world_size: 1"
            )

    @contextmanager
    def parallel(self, model: InpaintingModel) -> Iterator[None]:
        """`model`'s networks wrapped in DistributedDataParallel for the training steps, unwrapped after.

        Wrapping per epoch keeps state_dict keys (checkpoints, resume states, snapshots) unchanged, and
        each wrap broadcasts rank 0's weights and buffers, so every epoch starts from one state.
        """
        if self.world_size == 1:
            yield
            return
        networks = {name: getattr(model, name) for name in model.networks() if getattr(model, name) is not None}
        ids = [self.device.index] if self.device is not None and self.device.type == "cuda" else None
        try:
            for name, network in networks.items():
                setattr(model, name, DistributedDataParallel(network, device_ids=ids))
            yield
        finally:
            for name, network in networks.items():
                setattr(model, name, network)

    def _comm_device(self) -> torch.device:
        """Where collective buffers live: nccl only moves CUDA tensors."""
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


SINGLE = Ranks()  # one process: what `train` runs as unless `run_ranks` started it as a rank


def require_parallel(model: InpaintingModel, kind: str, where: str) -> None:
    """Refuse data-parallel training of a model whose named networks leave a trainable parameter out."""
    networks = [getattr(model, name) for name in model.networks() if getattr(model, name) is not None]
    covered = {id(p) for network in networks for p in network.parameters()}
    left_out = [name for name, p in model.named_parameters() if p.requires_grad and id(p) not in covered]
    if left_out:
        raise ValueError(
            f"{where}.world_size: {kind} cannot train data-parallel: its training step does not run "
            f"{left_out[0]} through a network it names for DistributedDataParallel; set world_size: 1"
        )


def rank_device(device: torch.device, config: DistributedConfig, local_rank: int, where: str) -> torch.device:
    """The device of local rank `local_rank`: one GPU each on CUDA; gloo and nccl need cpu or cuda."""
    require_backend(device, config, where)
    return torch.device("cuda", local_rank) if device.type == "cuda" else device


def require_backend(device: torch.device, config: DistributedConfig, where: str) -> None:
    """Refuse device / backend pairs torch.distributed cannot run (mps, nccl without CUDA, too few GPUs)."""
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"{where}: data-parallel training runs on cpu (gloo) or cuda (nccl), not {device.type}")
    if config.backend == "nccl" and device.type != "cuda":
        raise ValueError(f"{where}.backend: nccl needs CUDA GPUs; use backend: auto (gloo on cpu)")
    if device.type == "cuda" and torch.cuda.device_count() < config.local_size:
        raise ValueError(
            f"{where}.world_size: {config.local_size} ranks per node need as many GPUs, "
            f"this machine has {torch.cuda.device_count()}"
        )


def threads_per_rank(config: DistributedConfig) -> int:
    """CPU threads each rank uses when `training.threads` is null: the cores shared out, as torchrun does."""
    return max(1, (os.cpu_count() or 1) // config.local_size)


def free_port() -> int:
    """A TCP port nothing listens on now (for `master_port: 0`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _join(config: DistributedConfig, port: int, local_rank: int, device: torch.device) -> Ranks:
    """Join the process group as `local_rank` of this node; its collectives time out after `timeout_s`."""
    rank = config.node_rank * config.local_size + local_rank
    backend = ("nccl" if device.type == "cuda" else "gloo") if config.backend == "auto" else config.backend
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend,
        init_method=f"tcp://{config.master_addr}:{port}",
        rank=rank,
        world_size=config.world_size,
        timeout=timedelta(seconds=config.timeout_s),
    )
    return Ranks(rank, config.world_size, device)


def _spawned_rank(
    index: int, work: Callable[[Ranks], Any], config: DistributedConfig, port: int, device: torch.device
) -> None:
    """Entry point of a started process: local rank `index + 1` (local rank 0 is the node's own process)."""
    ranks = _join(config, port, index + 1, rank_device(device, config, index + 1, "distributed"))
    try:
        work(ranks)
    finally:
        dist.destroy_process_group()


def run_ranks(
    leader: Callable[[Ranks], T],
    worker: Callable[[Ranks], Any],
    config: DistributedConfig,
    device: torch.device,
    where: str,
) -> T:
    """`leader(ranks)` here as local rank 0 and the picklable `worker(ranks)` in started processes; leader's result.

    With one rank this is `leader(SINGLE)`: no process group, the single-process path exactly.
    Any failure stops every local rank; a rank that died or raised is named in one line. Each rank
    uses `threads_per_rank` CPU threads unless the work sets its own (`training.threads`).
    """
    if config.world_size == 1:
        return leader(SINGLE)
    port = config.master_port or free_port()
    local0 = rank_device(device, config, 0, where)
    context = None
    if config.local_size > 1:
        context = mp.start_processes(
            _spawned_rank,
            args=(worker, config, port, device),
            nprocs=config.local_size - 1,
            join=False,
            start_method="spawn",
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(threads_per_rank(config))
    try:
        ranks = _join(config, port, 0, local0)
        try:
            result = leader(ranks)
        finally:
            dist.destroy_process_group()
        _wait(context, config)
        return result
    except Exception as error:
        if not _between_ranks(error):  # the leader's own error (a bad input, a divergence): it says it all
            _stop(context)
            raise
        culprit = _failed_rank(error, context, config)
        _stop(context)
        raise RankFailedError(f"{where}: {culprit}") from None
    except BaseException:  # KeyboardInterrupt: stop the started ranks too
        _stop(context)
        raise
    finally:
        torch.set_num_threads(threads)


def _between_ranks(error: Exception) -> bool:
    """Whether `error` came from the ranks' communication (gloo raises plain RuntimeErrors), not the leader's work."""
    text = str(error)
    return isinstance(error, (dist.DistError, *RANK_FAILURES)) or (
        isinstance(error, RuntimeError) and any(backend in text for backend in ("gloo", "NCCL", "nccl"))
    )


def _wait(context: mp.ProcessContext | None, config: DistributedConfig) -> None:
    """Wait for the started ranks to finish after the leader did (they only leave the last collective)."""
    while context is not None and not context.join(timeout=config.timeout_s):
        pass


def _failed_rank(error: Exception, context: mp.ProcessContext | None, config: DistributedConfig) -> str:
    """`rank <r> <what happened>` for the started rank that died or raised (waiting a moment for it to end),
    else rank 0's own error: a rank of another node failed, or a collective timed out."""
    if context is not None and not isinstance(error, RANK_FAILURES):
        try:
            context.join(timeout=STOP_GRACE_S)
        except RANK_FAILURES as failure:
            error = failure
    first = config.node_rank * config.local_size
    if isinstance(error, mp.ProcessRaisedException):
        return f"rank {first + error.error_index + 1} failed: {_last_line(error.msg)}"
    if isinstance(error, mp.ProcessExitedException):
        how = f"killed by {error.signal_name}" if error.signal_name else f"exit code {error.exit_code}"
        return f"rank {first + error.error_index + 1} died ({how})"
    return f"rank {first} lost its peers: {_last_line(str(error))}"


def _stop(context: mp.ProcessContext | None) -> None:
    """Terminate the started ranks still running (they wait in a collective for a leader that gave up)."""
    if context is None:
        return
    for process in context.processes:
        if process.is_alive():
            process.terminate()
    for process in context.processes:
        process.join(STOP_GRACE_S)
        if process.is_alive():
            process.kill()
            process.join()


def _last_line(text: str) -> str:
    """The exception line of a traceback text (the last non-empty line)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text
