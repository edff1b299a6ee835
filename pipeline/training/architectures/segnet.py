"""SegNet (Badrinarayanan, Kendall & Cipolla, TPAMI 2017): an encoder-decoder that upsamples by max-unpooling.

The encoder is VGG-16's 13 convolutions (each 3x3 + BatchNorm + ReLU) in 5 stages, each
ending in 2x2 max-pooling that also records where each maximum was. The decoder mirrors it:
each stage puts every value back where its maximum was (max-unpooling with the encoder's
indices, zeros elsewhere), then convolves. There are no skip connections of features and
no learned upsampling; only the pooling indices cross from encoder to decoder.

Input (N, 1, S, S) normalised grey images, S divisible by 32; output (N, C, S, S) logits.
Trained from scratch (no pretrained encoder). With the VGG-16 widths and 2 classes it has
29.4 M parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.training.architectures.blocks import check_divisible, conv_bn_relu

VGG16_WIDTHS = (64, 128, 256, 512, 512)
VGG16_DEPTHS = (2, 2, 3, 3, 3)


def max_unpool2x2(values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """The inverse of 2x2, stride-2 max-pooling: each value returns to its maximum's place, zeros elsewhere.

    Equal to ``F.max_unpool2d(values, indices, 2)``, written with ops that ONNX export
    supports (the TorchScript exporter cannot trace ``max_unpool2d`` in torch 2.14): the
    index gives the maximum's row and column parity, i.e. its slot in the 2x2 window, and
    ``pixel_shuffle`` lays the four slots out.

    Args:
        values: (N, C, h, w) pooled values.
        indices: (N, C, h, w) int64 from ``F.max_pool2d(x, 2, 2, return_indices=True)`` on a
            (N, C, 2h, 2w) ``x``: flat positions ``row * 2w + column`` in each plane.

    Returns:
        (N, C, 2h, 2w), ``values`` at the positions ``indices`` name and 0 elsewhere.
    """
    width = 2 * values.shape[-1]
    slot = 2 * (torch.div(indices, width, rounding_mode="floor") % 2) + indices % 2  # (N, C, h, w), 0..3
    planes = torch.stack([values * (slot == k).to(values.dtype) for k in range(4)], dim=2)  # (N, C, 4, h, w)
    return F.pixel_shuffle(planes.flatten(1, 2), 2)


def _stage(in_channels: int, out_channels: int, depth: int) -> nn.Sequential:
    """``depth`` conv-BN-ReLU blocks, the first one changing the width."""
    return nn.Sequential(conv_bn_relu(in_channels, out_channels),
                         *(conv_bn_relu(out_channels, out_channels) for _ in range(depth - 1)))


class SegNet(nn.Module):
    """SegNet with a VGG-16-shaped encoder and its mirrored decoder (see the module docstring)."""

    def __init__(self, in_channels: int = 1, classes: int = 1, widths: tuple[int, ...] = VGG16_WIDTHS,
                 depths: tuple[int, ...] = VGG16_DEPTHS) -> None:
        """Builds the network.

        Args:
            in_channels: channels of the input image (1: grey).
            classes: C, the output channels (one logit per class).
            widths: channels of each encoder stage; the number of stages sets the pooling
                count (5: inputs divisible by 32).
            depths: convolutions per stage, same length as ``widths``.

        Raises:
            ValueError: ``widths`` and ``depths`` differ in length, or a depth is < 1.
        """
        super().__init__()
        if len(widths) != len(depths) or min(depths) < 1:
            raise ValueError(f"SegNet: widths {widths} and depths {depths} must pair up, each depth >= 1")
        self.multiple = 2 ** len(widths)
        inputs = (in_channels, *widths[:-1])
        self.encoder = nn.ModuleList(_stage(a, b, d) for a, b, d in zip(inputs, widths, depths))
        # Decoder stage k (deepest first) keeps width k, then narrows to width k-1 (stage 0 stays at widths[0]).
        outputs = (widths[0], *widths[:-1])
        self.decoder = nn.ModuleList(
            nn.Sequential(*(conv_bn_relu(w, w) for _ in range(d - 1)), *([conv_bn_relu(w, o)] if k else []))
            for k, (w, o, d) in reversed(list(enumerate(zip(widths, outputs, depths)))))
        self.head = nn.Conv2d(widths[0], classes, kernel_size=3, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, S, S) normalised images, S divisible by 32 -> (N, C, S, S) logits.

        Raises:
            ValueError: S is not divisible by 2 ** (number of stages).
        """
        check_divisible(images, self.multiple, "SegNet")
        x, indices = images, []
        for stage in self.encoder:
            x, index = F.max_pool2d(stage(x), kernel_size=2, stride=2, return_indices=True)
            indices.append(index)
        for stage, index in zip(self.decoder, reversed(indices)):
            x = stage(max_unpool2x2(x, index))
        return self.head(x)
