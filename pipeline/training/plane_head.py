"""The plane head: a classifier of the frame's plane (transverse or sagittal) beside the segmentation.

With ``model.plane_head`` on, a segmentation_models_pytorch network gets smp's auxiliary
classification head (average pooling of the deepest encoder features, dropout, a linear
layer to 2 logits) and returns ``(mask_logits, plane_logits)``; without it, the mask logits
alone. :func:`split_output` reads either, wherever a network is called.

Plane labels are int64: 0 transverse, 1 sagittal (the order of :data:`pipeline.planes.PLANES`),
:data:`UNKNOWN_LABEL` (-1) for a frame whose plane the data does not say; unknown frames take
no part in the plane loss or accuracy. The total training loss is the segmentation loss plus
``train.plane_weight`` times the cross-entropy of the batch's labelled frames (:func:`total_loss`).

At inference the head judges a whole frame. Trained on windows (``train.patch``), it sees
too little of a frame (the bladder, the gland's outline) to tell the plane: the demo's head
swung between 35% and 95% validation accuracy from epoch to epoch. With
``train.patch.plane_frames`` M > 0, :class:`WholeFramePlane` takes the masks from the
windows and the plane logits from a second encoder pass, with gradient, over the whole
augmented frames of the batch's first M windows. On this 2-core CPU (U-Net/ResNet-18,
batches of 4 windows of 128 px from 256 px frames) a step costs 0.41 s; M = 4 adds 130%
(and made the head right on 95-100% of the validation frames), M = 1 about 35% (and left
it unstable: BatchNorm's running statistics swing between window and single-frame batches).
A linear probe on the encoder's features without gradient stayed at the majority plane.
The default, M = 0, keeps the windows alone; README "The model's plane output" has the figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import PROJECT_ARCHS, ModelParams, ParamsError, TrainParams
from pipeline.planes import PLANES, normalise_plane
from pipeline.training.frame_plane import SegmenterWithFramePlane

UNKNOWN_LABEL = -1
HEAD_DROPOUT = 0.2  # smp's default for its classification head, in training only

NetworkOutput = torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]


def split_output(output: NetworkOutput) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A network's output as (mask logits, plane logits or None).

    Args:
        output: (N, C, S, S) mask logits, or smp's ``(mask_logits, label_logits)`` with
            (N, 2) plane logits when the network has the plane head.

    Returns:
        (N, C, S, S) mask logits, and (N, 2) plane logits or None without a head.
    """
    if isinstance(output, (tuple, list)):
        masks, planes = output
        return masks, planes
    return output, None


def plane_labels(values: Iterable[object]) -> np.ndarray:
    """(N,) int64 labels of plane names: 0 transverse, 1 sagittal, -1 anything else (empty, NaN, None)."""
    names = [normalise_plane(value) for value in values]
    return np.array([UNKNOWN_LABEL if name is None else PLANES.index(name) for name in names], np.int64)


def resolve_plane_head(model: ModelParams, labels: np.ndarray) -> ModelParams:
    """``model`` with ``plane_head`` as a boolean for these training frames.

    ``auto`` is on when the architecture is a segmentation_models_pytorch one and ``labels``
    hold both planes; ``true`` needs at least one labelled frame (the project's architectures
    already refuse it, see :class:`~pipeline.config.ModelParams`).

    Args:
        model: the ``model`` section.
        labels: (N,) int64 plane labels of the training frames (:func:`plane_labels`).

    Raises:
        ParamsError: ``plane_head`` is true and no training frame has a known plane.
    """
    known = set(np.asarray(labels)[np.asarray(labels) != UNKNOWN_LABEL].tolist())
    if model.plane_head == "auto":
        on = model.arch not in PROJECT_ARCHS and known == set(range(len(PLANES)))
    elif model.plane_head and not known:
        raise ParamsError("model.plane_head is true but no training frame has a known plane (the processed "
                          "manifest's plane column is empty); tag the frames' planes or set model.plane_head=auto")
    else:
        on = bool(model.plane_head)
    return model if model.plane_head is on else dataclasses.replace(model, plane_head=on)


def plane_loss(plane_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the frames of a known plane; an exact 0 (still on the graph) when there is none.

    Args:
        plane_logits: (N, 2) float logits.
        labels: (N,) int64 labels, -1 for unknown.

    Returns:
        A scalar tensor.
    """
    if not bool((labels != UNKNOWN_LABEL).any()):
        return plane_logits.sum() * 0.0  # keeps every parameter in the graph (DistributedDataParallel)
    return F.cross_entropy(plane_logits, labels, ignore_index=UNKNOWN_LABEL)


def total_loss(output: NetworkOutput, targets: torch.Tensor, planes: torch.Tensor | None,
               loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], plane_weight: float) -> torch.Tensor:
    """The training loss of a batch: segmentation loss + ``plane_weight`` x :func:`plane_loss`.

    Args:
        output: the network's output (see :func:`split_output`).
        targets: (N, C, S, S) float 0/1 truth.
        planes: (N,) int64 plane labels, or None (no plane term).
        loss_fn: the segmentation loss, (logits, targets) -> scalar, evaluated in float32.
        plane_weight: ``train.plane_weight``.

    Returns:
        A float32 scalar; the segmentation loss itself without a head or labels.
    """
    logits, plane_logits = split_output(output)
    loss = loss_fn(logits.float(), targets)
    if plane_logits is None or planes is None:
        return loss
    return loss + plane_weight * plane_loss(plane_logits.float(), planes)


def plane_hits(plane_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(2,) int64 on the logits' device: frames of a known plane predicted right, and frames of a known plane."""
    known = labels != UNKNOWN_LABEL
    right = (plane_logits.argmax(dim=1) == labels) & known
    return torch.stack([right.sum(), known.sum()]).to(torch.int64)


class WholeFramePlane(nn.Module):
    """What training on windows calls for an smp network with a plane head: masks from the
    windows, plane logits from the whole frames (see the module docstring).

    It holds no parameters of its own: the wrapped network is the one that is checkpointed,
    validated and exported, unchanged.
    """

    def __init__(self, network: nn.Module) -> None:
        """Wraps ``network``, an smp model built with its classification head (``aux_params``)."""
        super().__init__()
        self.network = network

    def forward(self, windows: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 1, P, P) windows and (M, 1, S, S) whole frames, normalised -> (N, C, P, P) mask
        logits of the windows and (M, 2) plane logits of the frames."""
        if isinstance(self.network, SegmenterWithFramePlane):  # the classifier of its own: the masks need no head
            return self.network.segmenter(windows), self.network.plane_classifier(frames)
        masks, _ = split_output(self.network(windows))
        return masks, self.network.classification_head(self.network.encoder(frames)[-1])


def whole_frames_per_step(model: ModelParams, train: TrainParams) -> int:
    """How many frames of each step's batch (per process) the plane head judges whole while the
    segmentation trains on windows: all of them for the frame classifier (it is cheap),
    ``train.patch.plane_frames`` for smp's head on the encoder (a second encoder pass), and 0
    without a head (``plane_head`` resolved) or without windows (the frames are whole already)."""
    if model.plane_head is not True or train.patch.size is None:
        return 0
    return train.batch_size if model.plane_classifier == "frame" else train.patch.plane_frames
