"""Several training processes: relaunching under torchrun, the process group, and reductions.

``train.processes: N`` (N > 1) makes the train stage run itself again as
``python -m torch.distributed.run --standalone --nproc_per_node=N -m pipeline.stages.train``
(:func:`launch`). Each process finds its rank in torchrun's environment variables
(:func:`world_from_environment`), joins the process group (gloo on the CPU, nccl on CUDA) and
trains its share of every batch under DistributedDataParallel; rank 0 alone writes files.
A stage started by the user under torchrun itself (several machines, README "Training:
resume, early stopping, several processes") is not relaunched: its world size must equal
``train.processes``.

torchrun starts each process in a session of its own, so killing the stage's process group
(``kill -9 -- -PGID``, what a batch system or a killed ``dvc repro`` does) would not reach
them: orphaned, they would train on, write the resume state and the checkpoint, and race the
re-run. Each process therefore asks Linux to kill it when torchrun's agent, its parent, dies
(:func:`exit_with_parent`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from pipeline.config import ParamsError

TIMEOUT = timedelta(minutes=30)  # collectives wait this long for a slow rank (rank 0 validating, writing)


@dataclass(frozen=True)
class World:
    """This process's place among the training processes.

    Attributes:
        rank: global rank, 0..size-1; rank 0 writes checkpoints, metrics, DVCLive and the console.
        size: number of processes.
        local_rank: rank on this machine (its GPU index on CUDA).
        local_size: processes on this machine.
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True with more than one process."""
        return self.size > 1


SINGLE = World()
"""One process: nothing is reduced, nothing is launched."""


def world_from_environment(environ: Mapping[str, str]) -> World | None:
    """The world torchrun describes in ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE``.

    Returns:
        None when the process was not started by torchrun (no ``WORLD_SIZE``).
    """
    if "WORLD_SIZE" not in environ:
        return None
    size = int(environ["WORLD_SIZE"])
    return World(rank=int(environ.get("RANK", 0)), size=size, local_rank=int(environ.get("LOCAL_RANK", 0)),
                 local_size=int(environ.get("LOCAL_WORLD_SIZE", size)))


def needs_launch(processes: int, environ: Mapping[str, str]) -> bool:
    """True when ``train.processes`` asks for several processes and this one was not started by torchrun."""
    return processes > 1 and world_from_environment(environ) is None


def torchrun_arguments(processes: int, module: str, argv: Sequence[str]) -> list[str]:
    """torchrun's arguments to run ``python -m module *argv`` in ``processes`` processes on this machine."""
    return ["--standalone", f"--nproc_per_node={processes}", "-m", module, *argv]


def threads_per_process(cpu_count: int, processes: int) -> int:
    """Intra-op threads for each of ``processes`` processes sharing ``cpu_count`` cores, >= 1."""
    return max(cpu_count // processes, 1)


def launch(processes: int, module: str, argv: Sequence[str], cpu_count: int) -> int:
    """Runs ``python -m module *argv`` in ``processes`` processes under torchrun and waits for them.

    ``OMP_NUM_THREADS`` is set to the cores per process unless already set (torchrun would
    set 1).

    Args:
        processes: processes to start on this machine, > 1.
        module: the module to run, e.g. ``pipeline.stages.train``.
        argv: its arguments (``--fold 2``, ``--verbose``).
        cpu_count: cores available.

    Returns:
        torchrun's exit status: 0 when every process succeeded.
    """
    environment = dict(os.environ)
    environment.setdefault("OMP_NUM_THREADS", str(threads_per_process(cpu_count, processes)))
    # torchrun's agent makes a log folder in the system's temporary folder and leaves it behind, empty (no
    # output is redirected here: the processes print to this console); this one goes when the run ends.
    with tempfile.TemporaryDirectory(prefix="trus-torchrun-") as agent_logs:
        command = [sys.executable, "-m", "torch.distributed.run", f"--log-dir={agent_logs}",
                   *torchrun_arguments(processes, module, argv)]
        return subprocess.run(command, env=environment, check=False).returncode


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def exit_with_parent() -> bool:
    """Makes Linux SIGKILL this process when its parent (torchrun's agent) dies; exits now if it already has.

    Returns:
        True when set; False where ``prctl`` is unavailable (not Linux): then an orphaned
        process trains on until its collectives time out.
    """
    parent = os.getppid()
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the agent died before the request took effect
        os._exit(1)
    return True


def check_world(world: World, processes: int) -> None:
    """Raises ParamsError unless torchrun started ``train.processes`` processes."""
    if world.size != processes:
        raise ParamsError(f"torchrun started {world.size} training process(es) but train.processes is {processes}; "
                          f"set train.processes={world.size} (the batch is shared among the processes)")


@contextmanager
def process_group(world: World, backend: str, device: torch.device) -> Iterator[None]:
    """Joins the process group for the block (nothing to do for :data:`SINGLE`).

    Args:
        world: this process's rank and the world size; the rendezvous address comes from
            torchrun's ``MASTER_ADDR``/``MASTER_PORT``.
        backend: ``gloo`` or ``nccl``.
        device: this process's device (its GPU is made current for nccl).
    """
    if not world.distributed:
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """The element-wise sum of ``tensor`` over every process (``tensor`` itself with one process).

    Args:
        tensor: the same shape and dtype on every process, on the backend's device
            (CPU for gloo, the GPU for nccl).

    Returns:
        ``tensor``, summed in place.
    """
    if world.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_objects(value: Any, world: World) -> list[Any]:
    """Every process's ``value`` (picklable), in rank order: ``[value]`` with one process."""
    if not world.distributed:
        return [value]
    gathered: list[Any] = [None] * world.size
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_object(value: Any, world: World) -> Any:
    """Rank 0's ``value`` (picklable), on every process: ``value`` itself with one process."""
    if not world.distributed:
        return value
    holder = [value if world.is_main else None]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier(world: World) -> None:
    """Waits until every process reaches this point."""
    if world.distributed:
        dist.barrier()


def shard(n_items: int, world: World) -> list[int]:
    """This process's items of ``n_items``: every ``world.size``-th from ``world.rank`` (no item twice, none left)."""
    return list(range(world.rank, n_items, world.size))
