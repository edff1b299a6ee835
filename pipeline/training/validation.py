"""Validation during training: the masks inference would make, scored as the evaluate stage scores them.

The masks are sigmoid > ``inference.threshold`` then ``inference.postprocess``
(:func:`inference_masks`), the probabilities averaged over ``inference.flips`` first when it
asks for test-time flips (:func:`pipeline.training.predict.mirrored_outputs`); per class, the Dice and IoU over the frames where truth or
prediction holds the class (:func:`pipeline.evaluation.summary.class_summary`). With a plane
head, also the accuracy of the plane output on the frames of a known plane. With several
processes each validates its share and the counts are added up (:func:`validate`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from pipeline.config import InferenceParams
from pipeline.evaluation.summary import ClassSummary, class_summary
from pipeline.inference.postprocess import postprocess_masks
from pipeline.training.distributed import SINGLE, World, all_reduce_sum
from pipeline.training.plane_head import plane_hits, split_output, total_loss
from pipeline.training.predict import mirrored_outputs


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
    return probability_masks(torch.sigmoid(logits.float()), classes, inference)


def probability_masks(probabilities: torch.Tensor, classes: tuple[str, ...], inference: InferenceParams
                      ) -> torch.Tensor:
    """The masks inference would make from probabilities: above the threshold, then the post-processing.

    Args:
        probabilities: (N, C, S, S) float in [0, 1].
        classes: the C class names.
        inference: ``threshold`` and ``postprocess`` (as :func:`inference_masks`).

    Returns:
        (N, C, S, S) bool on the probabilities' device.
    """
    predicted = probabilities > inference.threshold
    if not inference.postprocess.active:
        return predicted
    cleaned = [postprocess_masks(frame, classes, inference.postprocess) for frame in predicted.cpu().numpy()]
    return torch.from_numpy(np.stack(cleaned)).to(predicted.device)


@torch.no_grad()
def validate(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, device: torch.device,
             autocast: torch.dtype | None, classes: tuple[str, ...], inference: InferenceParams,
             world: World = SINGLE, positions: Sequence[int] | None = None,
             n_frames: int | None = None, plane_weight: float = 0.0
             ) -> tuple[float, dict[str, ClassSummary], float | None]:
    """Loss, per-class summary and plane accuracy of ``model`` on every frame of the validation set.

    The masks are made as inference makes them (:func:`inference_masks`); pixels are counted
    on the device and only the (N, C, 3) counts move to the CPU, where
    :func:`pipeline.evaluation.summary.class_summary` (the evaluate stage's definition) scores them.
    With several processes each validates its share of the frames; the per-frame counts and
    the loss sum are added up over the processes, so every process gets the score one
    process would get on all the frames with the same network.

    Args:
        model: logits network on ``device`` (not a DistributedDataParallel wrapper), with or
            without a plane head.
        loader: batches of (N, 1, S, S) images, (N, C, S, S) float 0/1 targets and (N,) int64
            plane labels: this process's frames, in order.
        loss_fn: maps (logits, targets) to a scalar.
        device: where to run.
        autocast: the forward pass's autocast dtype, None for float32.
        classes: the C class names.
        inference: the threshold, post-processing and test-time flips (the loss is the
            unflipped frames').
        world: the processes sharing the validation set.
        positions: the index in the whole validation set of each frame ``loader`` yields;
            None: ``loader`` yields the whole set, in order.
        n_frames: frames in the whole validation set (with ``positions``).
        plane_weight: the plane term's weight in the loss (``train.plane_weight``).

    Returns:
        The mean loss over frames (per batch as in training, plane term included), per class
        its :class:`ClassSummary`, and the plane accuracy over the frames of a known plane
        (None without a plane head or such frames).
    """
    model.eval()
    loss_sum, counts = 0.0, [torch.zeros((0, len(classes), 3), dtype=torch.int64)]
    hits = torch.zeros(3, dtype=torch.int64, device=device)  # right, known, batches with a plane output
    for images, targets, planes in loader:
        images, targets, planes = images.to(device), targets.to(device), planes.to(device)
        with torch.autocast(device_type=device.type, dtype=autocast, enabled=autocast is not None):
            output = model(images)
        logits, plane_logits = split_output(output)
        loss_sum += float(total_loss(output, targets, planes, loss_fn, plane_weight)) * len(images)
        if inference.flips == "none":
            masks = inference_masks(logits, classes, inference)
        else:
            with torch.autocast(device_type=device.type, dtype=autocast, enabled=autocast is not None):
                probabilities, plane_logits = mirrored_outputs(model, images, inference.flips)
            masks = probability_masks(probabilities, classes, inference)  # plane: the mean softmax's argmax
        counts.append(pixel_counts(masks, targets > 0.5).cpu())
        if plane_logits is not None:
            hits += torch.cat([plane_hits(plane_logits, planes), hits.new_ones(1)])
    table = torch.cat(counts)
    if positions is not None:
        table = torch.zeros((n_frames or len(positions), len(classes), 3), dtype=torch.int64).index_copy_(
            0, torch.tensor(list(positions), dtype=torch.int64), table)
    n_frames = len(table)
    table = all_reduce_sum(table.to(device), world).cpu().numpy()  # (N, C, 3)
    loss_total = float(all_reduce_sum(torch.tensor([loss_sum], dtype=torch.float64, device=device), world)[0])
    right, known, with_head = all_reduce_sum(hits, world).tolist()
    accuracy = right / known if with_head and known else None
    return (loss_total / n_frames, {name: class_summary(*table[:, channel].T) for channel, name in enumerate(classes)},
            accuracy)
