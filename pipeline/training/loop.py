"""The training loop: Adam, ReduceLROnPlateau on validation Dice, best checkpoint, DVCLive metrics.

Per epoch DVCLive logs ``train/loss``, ``val/loss``, ``val/dice_<class>``, ``val/dice_mean``
and ``lr`` (the learning rate used in that epoch) as one step. Mixed precision is used on
CUDA only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from dvclive import Live
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from pipeline.config import ModelParams, TrainParams
from pipeline.training.checkpoint import save_checkpoint
from pipeline.training.data import FrameDataset
from pipeline.training.losses import DiceBCELoss, hard_dice
from pipeline.training.model import build_model, resolve_device


@dataclass(frozen=True)
class EpochMetrics:
    """Scores of one epoch.

    Attributes:
        epoch: 1-based.
        train_loss, val_loss: mean Dice+BCE loss over frames.
        val_dice: per class, mean over validation frames of the hard Dice.
        lr: learning rate used during the epoch.
    """

    epoch: int
    train_loss: float
    val_loss: float
    val_dice: dict[str, float]
    lr: float

    @property
    def dice_mean(self) -> float:
        """Mean of :attr:`val_dice` over classes (the model-selection score)."""
        return float(np.mean(list(self.val_dice.values())))

    def as_metrics(self) -> dict[str, float]:
        """DVCLive metric names -> values."""
        dice = {f"val/dice_{name}": value for name, value in self.val_dice.items()}
        return {"train/loss": self.train_loss, "val/loss": self.val_loss, **dice,
                "val/dice_mean": self.dice_mean, "lr": self.lr}


def seed_everything(seed: int) -> None:
    """Seeds Python's, NumPy's and torch's global generators (model init, shuffling)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_step(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, loss_fn: nn.Module,
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> float:
    """One optimisation step on a batch.

    Args:
        model: logits network, on the batch's device.
        images: (N, 1, S, S) float32 normalised images.
        targets: (N, C, S, S) float32 0/1 truth.
        loss_fn: maps (logits, targets) to a scalar; evaluated in float32.
        optimizer: updates ``model``'s parameters.
        scaler: gradient scaler; when enabled (CUDA), the forward pass runs under autocast.

    Returns:
        The batch loss before the step.
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=images.device.type, enabled=scaler.is_enabled()):
        logits = model(images)
    loss = loss_fn(logits.float(), targets)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return float(loss.item())


@torch.no_grad()
def validate(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, device: torch.device,
             mixed_precision: bool) -> tuple[float, np.ndarray]:
    """Loss and hard Dice of ``model`` on every frame of ``loader``.

    Returns:
        The mean loss over frames and (C,) mean per-class hard Dice over frames.
    """
    model.eval()
    loss_sum, dice_rows = 0.0, []
    for images, targets in loader:
        images, targets = images.to(device), targets.to(device)
        with torch.autocast(device_type=device.type, enabled=mixed_precision):
            logits = model(images)
        loss_sum += float(loss_fn(logits.float(), targets)) * len(images)
        dice_rows.append(hard_dice(logits, targets).cpu())
    dice = torch.cat(dice_rows)
    return loss_sum / len(dice), dice.mean(dim=0).numpy()


def train_epoch(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler, device: torch.device, description: str) -> float:
    """One pass over ``loader`` with a progress bar; returns the mean loss over frames."""
    loss_sum, frames = 0.0, 0
    with tqdm(loader, desc=description, unit="batch", leave=False, disable=None) as progress:
        for images, targets in progress:
            loss = train_step(model, images.to(device), targets.to(device), loss_fn, optimizer, scaler)
            loss_sum, frames = loss_sum + loss * len(images), frames + len(images)
            progress.set_postfix(loss=f"{loss:.4f}")
    return loss_sum / max(frames, 1)


def train_model(model_params: ModelParams, params: TrainParams, classes: tuple[str, ...], train_set: FrameDataset,
                val_set: FrameDataset, checkpoint_path: Path, live_dir: Path) -> list[EpochMetrics]:
    """Trains a network from scratch and keeps the epoch with the best validation mean Dice.

    Seeds everything from ``params.seed`` first, so a run is reproducible on the same
    hardware. The last incomplete training batch is dropped (BatchNorm needs > 1 frame).

    Args:
        model_params: the network to build (``model`` section).
        params: the ``train`` section.
        classes: output channel names.
        train_set: augmented training frames.
        val_set: validation frames, not augmented.
        checkpoint_path: where the best epoch's checkpoint is written.
        live_dir: DVCLive's output folder (metrics.json and plots/metrics/...).

    Returns:
        The metrics of every epoch, in order.

    Raises:
        ValueError: an empty training or validation set.
        ParamsError, WeightsUnavailableError: see ``build_model`` and ``resolve_device``.
    """
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError(f"nothing to train on: {len(train_set)} training and {len(val_set)} validation frames")
    seed_everything(params.seed)
    device = resolve_device(params.device)
    mixed_precision = device.type == "cuda"
    model = build_model(model_params, len(classes)).to(device)
    shuffle = torch.Generator().manual_seed(params.seed)
    train_loader = DataLoader(train_set, batch_size=params.batch_size, shuffle=True, generator=shuffle,
                              drop_last=len(train_set) >= params.batch_size, pin_memory=mixed_precision)
    val_loader = DataLoader(val_set, batch_size=params.batch_size, pin_memory=mixed_precision)
    loss_fn = DiceBCELoss(params.dice_weight, params.bce_weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=params.plateau_factor,
                                                           patience=params.plateau_patience)
    scaler = torch.amp.GradScaler(device.type, enabled=mixed_precision)
    history: list[EpochMetrics] = []
    # In a DVC stage the metrics and plots are declared in dvc.yaml (dvcyaml=False) and
    # `dvc exp run` records the experiment itself (save_dvc_exp=False).
    with Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False) as live:
        for epoch in range(1, params.epochs + 1):
            train_set.epoch = epoch
            lr = optimizer.param_groups[0]["lr"]
            train_loss = train_epoch(model, train_loader, loss_fn, optimizer, scaler, device,
                                     f"epoch {epoch}/{params.epochs}")
            val_loss, dice = validate(model, val_loader, loss_fn, device, mixed_precision)
            metrics = EpochMetrics(epoch, train_loss, val_loss, dict(zip(classes, dice.tolist())), lr)
            scheduler.step(metrics.dice_mean)
            if not history or metrics.dice_mean > max(m.dice_mean for m in history):
                save_checkpoint(checkpoint_path, model, model_params, classes, train_set.size, epoch, metrics.dice_mean)
            history.append(metrics)
            for name, value in metrics.as_metrics().items():
                live.log_metric(name, value)
            live.next_step()
            tqdm.write(f"epoch {epoch}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, "
                       f"val Dice {metrics.dice_mean:.3f}, lr {lr:.2e}")
    return history
