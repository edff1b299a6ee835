"""What ``auto`` means for the device, precision, memory layout and data loading of a training run.

Pure functions of the ``train`` params and the machine's facts (is CUDA there, how many
cores), so the choice logic is tested without a GPU. :func:`resolve_runtime` gathers them
into a :class:`Runtime`. On the CPU ``auto`` keeps float32, NCHW and no DataLoader worker on
a 2-core machine (a worker would take a core from the training step). bfloat16 autocast and
channels-last are for the user to choose there: on a 2-core AMD EPYC with AVX-512 BF16 they
made an FPN/ResNet-18 training step 1.9 and 1.2 times faster, bfloat16 at its lower precision
(README "Training: resume, early stopping, several processes").
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from pipeline.config import ParamsError, TrainParams

PRECISIONS = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}
MAX_AUTO_WORKERS = 8


@dataclass(frozen=True)
class Runtime:
    """How one training process runs.

    Attributes:
        device: where the model and batches live (``cuda:<local rank>`` on CUDA).
        precision: ``float32`` (no autocast), ``float16`` (autocast + gradient scaler) or
            ``bfloat16`` (autocast, no scaler: bfloat16 has float32's exponent range).
        channels_last: model weights and input batches in NHWC memory layout.
        workers: DataLoader worker processes (0: load in the training process).
        pin_memory: page-locked batches, copied to the GPU with ``non_blocking``.
        sync_batchnorm: BatchNorm statistics over every process's frames (several CUDA
            processes); DistributedDataParallel refuses SyncBatchNorm on the CPU.
        backend: torch.distributed backend: ``nccl`` on CUDA, ``gloo`` on the CPU.
    """

    device: torch.device
    precision: str = "float32"
    channels_last: bool = False
    workers: int = 0
    pin_memory: bool = False
    sync_batchnorm: bool = False
    backend: str = "gloo"

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype of the forward pass under autocast, or None for plain float32."""
        return PRECISIONS[self.precision]

    @property
    def scales_gradients(self) -> bool:
        """True when a gradient scaler is needed (float16: small gradients underflow)."""
        return self.precision == "float16"

    @property
    def non_blocking(self) -> bool:
        """Host-to-device copies overlap computation (pinned memory only)."""
        return self.pin_memory


def choose_device(setting: str, cuda_available: bool, local_rank: int = 0) -> torch.device:
    """The device for ``train.device``.

    Args:
        setting: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``.
        cuda_available: whether a CUDA device is usable.
        local_rank: this process's index on its machine (0..GPUs-1): its GPU.

    Raises:
        ParamsError: ``cuda`` requested but no CUDA device is available.
    """
    if setting == "cuda" and not cuda_available:
        raise ParamsError("train.device is cuda but no CUDA device is available; use auto or cpu")
    if setting == "cpu" or not cuda_available:
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def choose_precision(setting: str, device_type: str) -> str:
    """``train.mixed_precision`` resolved: ``auto`` is float16 on CUDA and float32 elsewhere."""
    if setting != "auto":
        return setting
    return "float16" if device_type == "cuda" else "float32"


def choose_channels_last(setting: bool | str, device_type: str) -> bool:
    """``train.channels_last`` resolved: ``auto`` is on for CUDA (tensor cores), off on the CPU."""
    return device_type == "cuda" if setting == "auto" else bool(setting)


def choose_workers(setting: int | str, cpu_count: int, processes: int, device_type: str) -> int:
    """``train.workers`` resolved.

    ``auto``: on CUDA, the cores one process may use beside itself, ``cpu_count // processes
    - 1``, at most :data:`MAX_AUTO_WORKERS`; on the CPU, where the training step itself
    already uses every core, workers only take cores from it: half the cores left per
    process beyond 2 (0 on 1-2 cores per process, measured).

    Args:
        setting: ``auto`` or a count >= 0.
        cpu_count: cores this process may run on (>= 1).
        processes: training processes on this machine (>= 1).
        device_type: ``cuda`` or ``cpu``.

    Returns:
        Worker processes per training process, >= 0.
    """
    if setting != "auto":
        return int(setting)
    cores = max(cpu_count // processes, 1)
    spare = cores - 1 if device_type == "cuda" else (cores - 2) // 2
    return min(max(spare, 0), MAX_AUTO_WORKERS)


def resolve_runtime(params: TrainParams, cuda_available: bool, cpu_count: int, local_rank: int = 0,
                    processes: int = 1) -> Runtime:
    """Every ``auto`` of the ``train`` section resolved for one process.

    Args:
        params: the ``train`` section.
        cuda_available: whether a CUDA device is usable.
        cpu_count: cores available to this machine's training processes.
        local_rank: this process's index on its machine.
        processes: training processes on this machine.

    Raises:
        ParamsError: ``train.device: cuda`` without CUDA.
    """
    device = choose_device(params.device, cuda_available, local_rank)
    cuda = device.type == "cuda"
    return Runtime(device=device, precision=choose_precision(params.mixed_precision, device.type),
                   channels_last=choose_channels_last(params.channels_last, device.type),
                   workers=choose_workers(params.workers, cpu_count, processes, device.type),
                   pin_memory=cuda, sync_batchnorm=cuda and params.processes > 1,
                   backend="nccl" if cuda else "gloo")


def available_cpus() -> int:
    """Cores this process may run on (its CPU affinity), >= 1."""
    return max(len(os.sched_getaffinity(0)), 1) if hasattr(os, "sched_getaffinity") else max(os.cpu_count() or 1, 1)
