"""What a training process builds before its first epoch: network, optimiser, schedule, loaders.

Every process builds the same parts. With several processes the network is wrapped in
DistributedDataParallel (gradients averaged over the processes after each backward pass),
training frames are shuffled by a seeded DistributedSampler whose order depends only on
(``train.seed``, epoch), so a resumed run needs no shuffle state, and each process
validates every ``world.size``-th validation frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from pipeline.config import ModelParams, TrainParams
from pipeline.training.data import FrameDataset
from pipeline.training.devices import Runtime
from pipeline.training.distributed import World, shard
from pipeline.training.losses import build_loss
from pipeline.training.model import build_model
from pipeline.training.plane_head import WholeFramePlane, whole_frames_per_step


@dataclass
class TrainingParts:
    """One process's training objects.

    Attributes:
        model: the network (logits), on the runtime's device: checkpoints and validation.
        trained: what the training steps call: ``model`` itself or its ``WholeFramePlane``, or either in its
            DistributedDataParallel wrapper.
        loss_fn: (logits, targets) -> scalar, the segmentation loss.
        optimizer: Adam on ``model``'s parameters.
        scheduler: ReduceLROnPlateau on the validation score (mode max).
        scaler: gradient scaler, enabled for float16 autocast only.
        sampler: this process's share of the shuffled training frames; ``set_epoch`` before each epoch.
        train_loader: batches of ``batch_size / processes`` training frames.
        val_loader: this process's validation frames, in order.
        val_positions: their indices in the validation set.
        runtime: device, precision, layout and loading settings.
        plane_weight: the plane head's loss weight (``train.plane_weight``; no effect without a head).
        plane_frames: frames per step (per process) the plane head sees whole when training on windows
            (:func:`~pipeline.training.plane_head.whole_frames_per_step`; 0: none).
    """

    model: nn.Module
    trained: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    scaler: torch.amp.GradScaler
    sampler: DistributedSampler
    train_loader: DataLoader
    val_loader: DataLoader
    val_positions: list[int]
    runtime: Runtime
    plane_weight: float = 0.0
    plane_frames: int = 0


def memory_format(runtime: Runtime) -> torch.memory_format:
    """NHWC (channels-last) or the default NCHW layout."""
    return torch.channels_last if runtime.channels_last else torch.contiguous_format


def to_device(batch: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """A (N, C, S, S) batch on the runtime's device and layout (an asynchronous copy from pinned memory)."""
    return batch.to(runtime.device, non_blocking=runtime.non_blocking, memory_format=memory_format(runtime))


def build_network(model_params: ModelParams, n_classes: int, runtime: Runtime, world: World,
                  plane_frames: bool = False) -> tuple[nn.Module, nn.Module]:
    """The network on the device, and what training calls: the network itself, or a
    :class:`~pipeline.training.plane_head.WholeFramePlane` of it when ``plane_frames`` (a plane
    head trained on windows), in a DistributedDataParallel wrapper with several processes.

    Raises:
        ParamsError, WeightsUnavailableError: see ``build_model``.
    """
    model = build_model(model_params, n_classes)
    if runtime.sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(runtime.device, memory_format=memory_format(runtime))
    trained = WholeFramePlane(model) if plane_frames else model
    if not world.distributed:
        return model, trained
    device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    # static_graph: the same parameters take part in every step, and some (PSPNet's unused
    # 4th encoder stage) never do, which DDP accepts only so or with find_unused_parameters.
    return model, DistributedDataParallel(trained, device_ids=device_ids, static_graph=True)


def build_loaders(train_set: FrameDataset, val_set: FrameDataset, params: TrainParams, runtime: Runtime,
                  world: World) -> tuple[DistributedSampler, DataLoader, DataLoader, list[int]]:
    """This process's training sampler and loader, and validation loader with its frames' positions.

    The last incomplete global batch is dropped (BatchNorm needs more than one frame),
    unless the training set is smaller than one batch.
    """
    per_process = params.batch_size // world.size
    drop_last = len(train_set) >= params.batch_size
    sampler = DistributedSampler(train_set, num_replicas=world.size, rank=world.rank, shuffle=True, seed=params.seed,
                                 drop_last=drop_last)
    options: dict[str, Any] = {"num_workers": runtime.workers, "pin_memory": runtime.pin_memory}
    train_loader = DataLoader(train_set, batch_size=per_process, sampler=sampler, drop_last=drop_last, **options)
    positions = shard(len(val_set), world)
    val_loader = DataLoader(Subset(val_set, positions), batch_size=per_process, **options)
    return sampler, train_loader, val_loader, positions


def build_parts(model_params: ModelParams, params: TrainParams, n_classes: int, train_set: FrameDataset,
                val_set: FrameDataset, runtime: Runtime, world: World) -> TrainingParts:
    """Every training object of one process, freshly initialised (the caller seeds first)."""
    model, trained = build_network(model_params, n_classes, runtime, world, train_set.plane_frames)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=params.plateau_factor,
                                                           patience=params.plateau_patience)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.scales_gradients)
    sampler, train_loader, val_loader, positions = build_loaders(train_set, val_set, params, runtime, world)
    return TrainingParts(model, trained, build_loss(params.loss, n_classes), optimizer, scheduler, scaler, sampler,
                         train_loader, val_loader, positions, runtime, params.plane_weight,
                         whole_frames_per_step(model_params, params))


def parts_state(parts: TrainingParts) -> dict[str, Any]:
    """The ``state_dict`` of the model, optimiser, scheduler and scaler (tensors on the CPU)."""
    weights = {name: tensor.detach().cpu() for name, tensor in parts.model.state_dict().items()}
    return {"model": weights, "optimizer": parts.optimizer.state_dict(), "scheduler": parts.scheduler.state_dict(),
            "scaler": parts.scaler.state_dict()}


def restore_parts(parts: TrainingParts, state: dict[str, Any]) -> None:
    """Loads what :func:`parts_state` saved into freshly built parts."""
    parts.model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    if state["scaler"]:
        parts.scaler.load_state_dict(state["scaler"])


def sync_buffers(model: nn.Module, world: World) -> None:
    """Copies rank 0's buffers (BatchNorm running statistics) to every process.

    DistributedDataParallel keeps the parameters equal on every process, but each process
    updates its BatchNorm statistics with its own frames; after this every process holds
    rank 0's network, the one the checkpoint saves.
    """
    if world.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
