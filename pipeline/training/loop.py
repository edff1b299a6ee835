"""The training loop: Adam, ReduceLROnPlateau on the validation score, a fixed epoch budget, DVCLive metrics.

Validation (:mod:`pipeline.training.validation`) scores the masks as inference makes them
(sigmoid > ``inference.threshold``, then ``inference.postprocess``) with the evaluate stage's
definition (:mod:`pipeline.evaluation.summary`): per class, the mean Dice over the frames
where truth or prediction holds the class. The score, mean of the class Dice, drives the
scheduler, the curves, optional early stopping and, with ``train.keep: best``, the epoch the
checkpoint keeps; by default (``keep: last``) the checkpoint holds the model after the last epoch. Per
epoch DVCLive logs ``train/loss``, ``val/loss``, ``val/dice_<class>``, ``val/score`` and
``lr`` (the learning rate used in that epoch) as one step, and with a plane head
(``model.plane_head``, :mod:`pipeline.training.plane_head`) ``val/plane_accuracy`` on the
validation frames of a known plane, which is not part of the score. The losses include the
plane term, ``train.plane_weight`` x its cross-entropy.

After every epoch the whole state is saved (:mod:`pipeline.training.resume`), so a killed
run continues from its last complete epoch, with the same result on the CPU. With several
processes (:mod:`pipeline.training.distributed`) rank 0 alone writes files and prints, and
reads the resume state, which it sends to the others.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dvclive import Live
from torch import nn
from tqdm import tqdm

from pipeline.config import InferenceParams, ModelParams, TrainParams
from pipeline.evaluation.summary import ClassSummary, selection_score
from pipeline.inference.contract import NO_POSTPROCESS
from pipeline.training.checkpoint import save_checkpoint
from pipeline.training.data import FrameDataset
from pipeline.training.devices import Runtime, available_cpus, resolve_runtime
from pipeline.training.distributed import (SINGLE, World, all_reduce_sum, barrier, broadcast_object, gather_objects,
                                           process_group)
from pipeline.training.parts import TrainingParts, build_parts, parts_state, restore_parts, sync_buffers, to_device
from pipeline.training.plane_head import resolve_plane_head, total_loss, whole_frames_per_step
from pipeline.training.progress import Progress, advance, finished, improves, kept_epoch, stops_early
from pipeline.training.resume import (ResumeSpec, discard, load_state, read_folder, restore_rng_states, rng_states,
                                      save_state, write_folder)
from pipeline.training.validation import validate


@dataclass(frozen=True)
class EpochMetrics:
    """Scores of one epoch.

    Attributes:
        epoch: 1-based.
        train_loss, val_loss: mean training loss over frames.
        val: per class, the validation summary (Dice and IoU over the scored frames, frame counts).
        lr: learning rate used during the epoch.
        step_losses: the loss of each training batch (the whole batch, over every process), in order.
        plane_accuracy: the plane head's accuracy in [0, 1] on the validation frames of a known
            plane; None without a head or such frames.
    """

    epoch: int
    train_loss: float
    val_loss: float
    val: dict[str, ClassSummary]
    lr: float
    step_losses: tuple[float, ...] = ()
    plane_accuracy: float | None = None

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
        plane = {} if self.plane_accuracy is None else {"val/plane_accuracy": self.plane_accuracy}
        return {"train/loss": self.train_loss, "val/loss": self.val_loss, **dice, "val/score": self.score, **plane,
                "lr": self.lr}

    def as_record(self) -> dict[str, Any]:
        """Plain values (for the resume state); :meth:`from_record` inverts it."""
        return {"epoch": self.epoch, "train_loss": self.train_loss, "val_loss": self.val_loss, "lr": self.lr,
                "val": {name: summary.as_dict() for name, summary in self.val.items()},
                "step_losses": list(self.step_losses), "plane_accuracy": self.plane_accuracy}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EpochMetrics:
        """The metrics :meth:`as_record` described."""
        return cls(record["epoch"], record["train_loss"], record["val_loss"],
                   {name: ClassSummary(**values) for name, values in record["val"].items()}, record["lr"],
                   tuple(record["step_losses"]), record.get("plane_accuracy"))


def seed_everything(seed: int) -> None:
    """Seeds Python's, NumPy's and torch's global generators (model init, dropout)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_step(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, loss_fn: nn.Module,
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               autocast: torch.dtype | None = None, planes: torch.Tensor | None = None,
               plane_weight: float = 0.0, plane_frames: torch.Tensor | None = None) -> float:
    """One optimisation step on a batch.

    Args:
        model: logits network, on the batch's device (or its DistributedDataParallel wrapper).
        images: (N, 1, S, S) float32 normalised images.
        targets: (N, C, S, S) float32 0/1 truth.
        loss_fn: maps (logits, targets) to a scalar; evaluated in float32.
        optimizer: updates ``model``'s parameters.
        scaler: gradient scaler (enabled for float16 autocast).
        autocast: the forward pass's autocast dtype, None for float32; when None and the
            scaler is enabled, float16.
        planes: (N,) int64 plane labels (-1 unknown) for a network with a plane head, or None.
        plane_weight: the plane term's weight (``train.plane_weight``).
        plane_frames: (M, 1, S, S) whole frames the plane head judges when ``images`` are
            windows, M <= N, the frames of the first M windows (their labels are ``planes[:M]``);
            ``model`` is then a :class:`~pipeline.training.plane_head.WholeFramePlane`.

    Returns:
        The batch loss before the step (:func:`pipeline.training.plane_head.total_loss`).
    """
    dtype = autocast if autocast is not None else (torch.float16 if scaler.is_enabled() else None)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=images.device.type, dtype=dtype, enabled=dtype is not None):
        output = model(images) if plane_frames is None else model(images, plane_frames)
    if plane_frames is not None and planes is not None:
        planes = planes[:len(plane_frames)]
    loss = total_loss(output, targets, planes, loss_fn, plane_weight)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return float(loss.item())


def train_epoch(parts: TrainingParts, description: str, world: World = SINGLE) -> tuple[float, list[float]]:
    """One pass over this process's training batches, with a progress bar on rank 0.

    Returns:
        The mean loss over the epoch's frames and the loss of each whole batch, both over
        every process (per-process losses weighted by their frames).
    """
    runtime, local = parts.runtime, []
    with tqdm(parts.train_loader, desc=description, unit="batch", leave=False,
              disable=None if world.is_main else True) as progress:
        for images, targets, planes, *frames in progress:
            loss = train_step(parts.trained, to_device(images, runtime), to_device(targets, runtime), parts.loss_fn,
                              parts.optimizer, parts.scaler, runtime.autocast_dtype,
                              planes.to(runtime.device, non_blocking=runtime.non_blocking), parts.plane_weight,
                              to_device(frames[0][:parts.plane_frames], runtime) if frames else None)
            local.append((loss * len(images), len(images)))
            progress.set_postfix(loss=f"{loss:.4f}")
    sums = all_reduce_sum(torch.tensor(local, dtype=torch.float64, device=runtime.device).reshape(-1, 2), world).cpu()
    mean = float(sums[:, 0].sum() / max(float(sums[:, 1].sum()), 1.0))
    return mean, (sums[:, 0] / sums[:, 1]).tolist()


def _run_epoch(parts: TrainingParts, epoch: int, params: TrainParams, train_set: FrameDataset, val_size: int,
               classes: tuple[str, ...], inference: InferenceParams, world: World) -> EpochMetrics:
    """Trains epoch ``epoch`` (1-based), validates, and steps the scheduler."""
    train_set.epoch = epoch
    parts.sampler.set_epoch(epoch)
    lr = parts.optimizer.param_groups[0]["lr"]
    train_loss, steps = train_epoch(parts, f"epoch {epoch}/{params.epochs}", world)
    sync_buffers(parts.model, world)
    val_loss, summaries, plane_accuracy = validate(parts.model, parts.val_loader, parts.loss_fn, parts.runtime.device,
                                                   parts.runtime.autocast_dtype, classes, inference, world,
                                                   parts.val_positions, val_size, parts.plane_weight)
    metrics = EpochMetrics(epoch, train_loss, val_loss, summaries, lr, tuple(steps), plane_accuracy)
    parts.scheduler.step(metrics.score)
    return metrics


def _cpu_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


def _start(parts: TrainingParts, resume: ResumeSpec | None,
           world: World) -> tuple[Progress, list[EpochMetrics], dict[str, torch.Tensor] | None, dict[str, str] | None]:
    """A fresh run, or the one ``resume``'s state continues: (progress, history, best weights, DVCLive files).

    Rank 0 alone reads (and may discard) the state, on its machine, and sends it to the
    others: they need not share its file system (several machines), and every process
    resumes from the same epoch or none does.

    Raises:
        ValueError: the processes were given different params, data or code (their
            fingerprints differ), e.g. another ``artifacts/`` on another machine.
    """
    if resume is None:
        return Progress(), [], None, None
    fingerprints = gather_objects(resume.fingerprint, world)
    if len(set(fingerprints)) > 1:
        raise ValueError(f"the {world.size} training processes do not train the same thing: their params, data "
                         f"or code differ (fingerprints {', '.join(f[:12] for f in fingerprints)}); give every "
                         "machine the same project, artifacts/ and params.yaml")
    state = broadcast_object(load_state(resume) if world.is_main else None, world)
    if state is None:
        return Progress(), [], None, None
    restore_parts(parts, state)
    restore_rng_states(state["rng"][world.rank])
    history = [EpochMetrics.from_record(record) for record in state["history"]]
    return Progress(**state["progress"]), history, state["best_weights"], state["live"]


def _open_live(live_dir: Path, files: dict[str, str] | None, epochs_done: int) -> Live:
    """DVCLive for a new run, or continuing after ``epochs_done`` epochs from their saved files."""
    # In a DVC stage the metrics and plots are declared in dvc.yaml (dvcyaml=False) and
    # `dvc exp run` records the experiment itself (save_dvc_exp=False).
    if files is None:
        return Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False)
    write_folder(live_dir, files)
    live = Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, resume=True)
    live.step = epochs_done  # DVCLive reads step 0 back as "nothing logged yet"
    return live


def _report(live: Live, metrics: EpochMetrics) -> None:
    for name, value in metrics.as_metrics().items():
        live.log_metric(name, value)
    live.next_step()
    dice = ", ".join(f"{name} {value:.3f}" for name, value in metrics.val_dice.items())
    plane = "" if metrics.plane_accuracy is None else f", plane accuracy {metrics.plane_accuracy:.3f}"
    tqdm.write(f"epoch {metrics.epoch}: train loss {metrics.train_loss:.4f}, val loss {metrics.val_loss:.4f}, "
               f"val score {metrics.score:.3f} (Dice {dice}){plane}, lr {metrics.lr:.2e}")


def kept_metrics(history: Sequence[EpochMetrics], keep: str) -> EpochMetrics:
    """The epoch whose model the checkpoint holds (``train.keep``: ``last`` or ``best``)."""
    return history[kept_epoch([metrics.score for metrics in history], keep) - 1]


def train_model(model_params: ModelParams, params: TrainParams, classes: tuple[str, ...], train_set: FrameDataset,
                val_set: FrameDataset, checkpoint_path: Path, live_dir: Path,
                inference: InferenceParams = InferenceParams(postprocess=NO_POSTPROCESS), *, world: World = SINGLE,
                resume: ResumeSpec | None = None, runtime: Runtime | None = None) -> list[EpochMetrics]:
    """Trains a network for ``params.epochs`` epochs (or until early stopping) and writes its checkpoint.

    Seeds everything from ``params.seed`` first, so a run is reproducible on the same
    hardware. The checkpoint holds the model after the last epoch run (``keep: last``) or
    the epoch with the best validation score (``keep: best``). With ``resume``, the state
    saved after each epoch lets a killed run continue; it is deleted when the run is done.

    Args:
        model_params: the network to build (``model`` section); ``plane_head: auto`` is resolved
            on ``train_set``'s plane labels and the checkpoint stores the boolean.
        params: the ``train`` section.
        classes: output channel names.
        train_set: augmented training frames.
        val_set: validation frames, not augmented.
        checkpoint_path: where the kept epoch's checkpoint is written (by rank 0).
        live_dir: DVCLive's output folder (metrics.json and plots/metrics/...), rank 0's.
        inference: how validation makes masks (``inference`` section; no post-processing by default).
        world: this process among the training processes (started by torchrun).
        resume: where the resume state lives and what it must match; None: no resume state.
        runtime: device, precision and loading; None: ``params`` resolved on this machine.

    Returns:
        The metrics of every epoch run, in order (a resumed run's earlier epochs included).

    Raises:
        ValueError: an empty training or validation set, or processes given different params,
            data or code (with ``resume``).
        ParamsError: ``inference.postprocess`` names a class not in ``classes``, ``model.plane_head``
            is true without a training frame of a known plane; and see ``build_model`` and
            ``resolve_runtime``.
        WeightsUnavailableError: see ``build_model``.
    """
    if len(train_set) == 0 or len(val_set) == 0:
        raise ValueError(f"nothing to train on: {len(train_set)} training and {len(val_set)} validation frames")
    inference.check_classes(classes)
    model_params = resolve_plane_head(model_params, train_set.planes)
    train_set.plane_frames = train_set.patch_size is not None and whole_frames_per_step(model_params, params) > 0
    runtime = runtime or resolve_runtime(params, torch.cuda.is_available(), available_cpus(), world.local_rank,
                                         world.local_size)
    with process_group(world, runtime.backend, runtime.device):
        seed_everything(params.seed)
        parts = build_parts(model_params, params, len(classes), train_set, val_set, runtime, world)
        progress, history, best_weights, live_files = _start(parts, resume, world)
        if history and world.is_main:
            tqdm.write(f"resuming after epoch {progress.epoch} of {params.epochs} from {resume.path}")  # type: ignore[union-attr]
        with _open_live(live_dir, live_files, progress.epoch) if world.is_main else contextlib.nullcontext() as live:
            while not finished(progress, params.epochs, params.early_stopping_patience):
                metrics = _run_epoch(parts, progress.epoch + 1, params, train_set, len(val_set), classes, inference,
                                     world)
                if improves(progress, metrics.score) and params.keep == "best":
                    best_weights = _cpu_copy(parts.model)
                progress, history = advance(progress, metrics.score), [*history, metrics]
                if world.is_main:
                    _report(live, metrics)
                rng = gather_objects(rng_states(), world)
                if resume is not None and world.is_main:
                    save_state(resume, {**parts_state(parts), "rng": rng, "progress": progress.as_dict(),
                                        "history": [m.as_record() for m in history], "best_weights": best_weights,
                                        "live": read_folder(live_dir)})
            if stops_early(progress, params.early_stopping_patience) and world.is_main:
                tqdm.write(f"early stop after epoch {progress.epoch}: no better val score in "
                           f"{params.early_stopping_patience} epoch(s) (best {progress.best_score:.3f} at epoch "
                           f"{progress.best_epoch})")
        if world.is_main:
            kept = kept_metrics(history, params.keep)
            weights = best_weights if params.keep == "best" else parts.model.state_dict()
            save_checkpoint(checkpoint_path, weights, model_params, classes, train_set.size, kept.epoch, kept.score)
            if resume is not None:
                discard(resume)
        barrier(world)
    return history
