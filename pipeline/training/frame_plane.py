"""The frame plane classifier: a small CNN that tells the plane from a thumbnail of the whole frame.

``model.plane_classifier: frame`` (the default) gives the plane head this network of its own
instead of smp's head on the segmentation encoder (``encoder``). It sees the whole frame at
every training step, also when the segmentation trains on windows (``train.patch``), where
smp's head sees only the window unless ``train.patch.plane_frames`` pays for a second pass of
the encoder (:mod:`pipeline.training.plane_head`).

The classifier averages the (N, 1, S, S) input in boxes of S // 64 px (a :data:`THUMBNAIL`
px thumbnail when S is a multiple of 64, such as 256 and 768; below 128 px the frame as it
is), then 5 blocks of 3x3 convolution, BatchNorm, ReLU and 2x2
max pooling (16, 32, 64, 64, 128 channels), global average pooling, dropout and a linear
layer to 2 logits: 135 k parameters. The whole-frame view is what a sonographer judges the
plane by: the gland's outline across or along, the bladder at one end of a sagittal view.
Measured on this 2-core CPU, trained alone on the demo sample's 80 training frames (256 px,
batches of 4): 20 ms a step, right on 20 of 20 test frames from epoch 2 of 40.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.planes import PLANES

THUMBNAIL = 64  # px: the side the frame is averaged down to
CHANNELS = (16, 32, 64, 64, 128)  # each block halves the side: 64 px -> 2 px
DROPOUT = 0.2  # before the linear layer, in training only


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True), nn.MaxPool2d(2))


class FramePlaneClassifier(nn.Module):
    """(N, 1, S, S) normalised frames -> (N, 2) plane logits, in the order of ``PLANES``; S >= 32."""

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        sides = (in_channels, *CHANNELS)
        self.features = nn.Sequential(*(_block(a, b) for a, b in zip(sides, sides[1:])))
        self.dropout = nn.Dropout(DROPOUT)
        self.linear = nn.Linear(CHANNELS[-1], len(PLANES))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():  # traced for ONNX, the box is a constant: the export's size is fixed
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            box = max(1, int(frames.shape[-1]) // THUMBNAIL)
        thumbnail = F.avg_pool2d(frames, box) if box > 1 else frames
        pooled = F.adaptive_avg_pool2d(self.features(thumbnail), 1).flatten(1)
        return self.linear(self.dropout(pooled))


class SegmenterWithFramePlane(nn.Module):
    """A segmentation network and a :class:`FramePlaneClassifier` of the same input.

    Returns what smp's networks with a classification head return: ``(mask_logits,
    plane_logits)``, (N, C, S, S) and (N, 2), so every caller reads it the same way
    (:func:`pipeline.training.plane_head.split_output`).
    """

    def __init__(self, segmenter: nn.Module, classifier: FramePlaneClassifier) -> None:
        super().__init__()
        self.segmenter = segmenter
        self.plane_classifier = classifier

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.segmenter(images), self.plane_classifier(images)


def segmenter_of(network: nn.Module) -> nn.Module:
    """The segmentation network of ``network``: its ``segmenter`` when it has a frame plane classifier, else itself."""
    return network.segmenter if isinstance(network, SegmenterWithFramePlane) else network
