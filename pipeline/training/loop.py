"""The training loop: Adam, ReduceLROnPlateau on the validation score, best checkpoint, DVCLive metrics.

Validation scores the masks as inference makes them (sigmoid > ``inference.threshold``, then
``inference.postprocess``) with the evaluate stage's definition
(:mod:`pipeline.evaluation.summary`): per class, the mean Dice over the frames where truth or
prediction holds the class. The score, mean of the class Dice, drives the scheduler and the
best checkpoint. Per epoch DVCLive logs ``train/loss``, ``val/loss``, ``val/dice_<class>``,
``val/score`` and ``lr`` (the learning rate used in that epoch) as one step. Mixed precision
is used on CUDA only.
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

from pipeline.config import InferenceParams, ModelParams, TrainParams
from pipeline.evaluation.summary import ClassSummary, class_summary, selection_score
from pipeline.inference.contract import NO_POSTPROCESS
from pipeline.inference.postprocess import postprocess_masks
from pipeline.training.checkpoint import save_checkpoint
from pipeline.training.data import FrameDataset
from pipeline.training.losses import build_loss
from pipeline.training.model import build_model, resolve_device


@dataclass(frozen=True)
class EpochMetrics:
    """Scores of one epoch.

    Attributes:
        epoch: 1-based.
        train_loss, val_loss: mean training loss over frames.
        val: per class, the validation summary (Dice and IoU over the scored frames, frame counts).
        lr: learning rate used during the epoch.
    """

    epoch: int
    train_loss: float
    val_loss: float
    val: dict[str, ClassSummary]
    lr: float

    @property
    def val_dice(self) -> dict[str, float]:
        """Per class, the validation Dice in [0, 1]."""
        return {name: summary.dice for name, summary in self.val.items()}

    @property
    def score(self) -> float:
        """The model-selection score in [0, 1]: the mean over classes of :attr:`val_dice`."""
        return selection_score(self.val.values())

    def as_metrics(self) -> dict[str, float]:
        """DVCLive metric names -> values."""
        dice = {f"val/dice_{name}": value for name, value in self.val_dice.items()}
        return {"train/loss": self.train_loss, "val/loss": self.val_loss, **dice, "val/score": self.score,
                "lr": self.lr}


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


def pixel_counts(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per frame and class, the truth, predicted and intersection pixel counts, on the masks' device.

    Args:
        predicted, truth: (N, C, S, S) bool masks.

    Returns:
        (N, C, 3) int64: truth pixels, predicted pixels, pixels in both.
    """
    return torch.stack([truth.sum(dim=(2, 3)), predicted.sum(dim=(2, 3)), (predicted & truth).sum(dim=(2, 3))], dim=-1)


def inference_masks(logits: torch.Tensor, classes: tuple[str, ...], inference: InferenceParams) -> torch.Tensor:
    """The masks inference would make from logits: sigmoid > threshold, then the post-processing.

    Args:
        logits: (N, C, S, S) logits.
        classes: the C class names.
        inference: ``threshold`` and ``postprocess``; post-processing runs on the CPU
            (:func:`pipeline.inference.postprocess.postprocess_masks`), frame by frame.

    Returns:
        (N, C, S, S) bool on the logits' device.
    """
    predicted = torch.sigmoid(logits.float()) > inference.threshold
    if not inference.postprocess.active:
        return predicted
    cleaned = [postprocess_masks(frame, classes, inference.postprocess) for frame in predicted.cpu().numpy()]
    return torch.from_numpy(np.stack(cleaned)).to(predicted.device)


@torch.no_grad()
def validate(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, device: torch.device,
             mixed_precision: bool, classes: tuple[str, ...],
             inference: InferenceParams) -> tuple[float, dict[str, ClassSummary]]:
    """Loss and per-class summary of ``model`` on every frame of ``loader``.

    The masks are made as inference makes them (:func:`inference_masks`); pixels are counted
    on the device and only the (N, C, 3) counts move to the CPU, where
    :func:`pipeline.evaluation.summary.class_summary` (the evaluate stage's definition) scores them.

    Args:
        model: logits network on ``device``.
        loader: batches of (N, 1, S, S) images and (N, C, S, S) float 0/1 targets.
        loss_fn: maps (logits, targets) to a scalar.
        device: where to run.
        mixed_precision: run the forward pass under autocast.
        classes: the C class names.
        inference: the threshold and post-processing.

    Returns:
        The mean loss over frames, and per class its :class:`ClassSummary`.
    """
    model.eval()
    loss_sum, counts = 0.0, []
    for images, targets in loader:
        images, targets = images.to(device), targets.to(device)
        with torch.autocast(device_type=device.type, enabled=mixed_precision):
            logits = model(images)
        loss_sum += float(loss_fn(logits.float(), targets)) * len(images)
        counts.append(pixel_counts(inference_masks(logits, classes, inference), targets > 0.5).cpu())
    table = torch.cat(counts).numpy()  # (N, C, 3)
    return loss_sum / len(table), {name: class_summary(*table[:, channel].T) for channel, name in enumerate(classes)}


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
                val_set: FrameDataset, checkpoint_path: Path, live_dir: Path,
                inference: InferenceParams = InferenceParams(postprocess=NO_POSTPROCESS)) -> list[EpochMetrics]:
    """Trains a network from scratch and keeps the epoch with the best validation score (:attr:`EpochMetrics.score`).

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
        inference: how validation makes masks (``inference`` section; no post-processing by default).

    Returns:
        The metrics of every epoch, in order.

    Raises:
        ValueError: an empty training or validation set.
        ParamsError: ``inference.postprocess`` names a class not in ``classes``; and see
            ``build_model`` and ``resolve_device``.
        WeightsUnavailableError: see ``build_model``.
    """
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError(f"nothing to train on: {len(train_set)} training and {len(val_set)} validation frames")
    inference.check_classes(classes)
    seed_everything(params.seed)
    device = resolve_device(params.device)
    mixed_precision = device.type == "cuda"
    model = build_model(model_params, len(classes)).to(device)
    shuffle = torch.Generator().manual_seed(params.seed)
    train_loader = DataLoader(train_set, batch_size=params.batch_size, shuffle=True, generator=shuffle,
                              drop_last=len(train_set) >= params.batch_size, pin_memory=mixed_precision)
    val_loader = DataLoader(val_set, batch_size=params.batch_size, pin_memory=mixed_precision)
    loss_fn = build_loss(params.loss, len(classes))
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
            val_loss, summaries = validate(model, val_loader, loss_fn, device, mixed_precision, classes, inference)
            metrics = EpochMetrics(epoch, train_loss, val_loss, summaries, lr)
            scheduler.step(metrics.score)
            if not history or metrics.score > max(m.score for m in history):
                save_checkpoint(checkpoint_path, model, model_params, classes, train_set.size, epoch, metrics.score)
            history.append(metrics)
            for name, value in metrics.as_metrics().items():
                live.log_metric(name, value)
            live.next_step()
            dice = ", ".join(f"{name} {value:.3f}" for name, value in metrics.val_dice.items())
            tqdm.write(f"epoch {epoch}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, "
                       f"val score {metrics.score:.3f} (Dice {dice}), lr {lr:.2e}")
    return history
