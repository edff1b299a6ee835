"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015) upsampling by bilinear interpolation, not transposed convolutions.

Laid out as the widely used ``bilinear=True`` variant of milesial/Pytorch-UNet: a double
convolution (3x3 + BatchNorm + ReLU, twice) at each of 5 levels (widths 64-128-256-512, and
512 at the bottom, half of 1024 because no transposed convolution halves it on the way up),
4 max-poolings down; on the way up each level doubles the size bilinearly
(``align_corners=True``), concatenates the encoder's features of that size and applies a
double convolution whose middle width is half its input. A 1x1 convolution gives the logits.

Input (N, 1, S, S) normalised grey images, S divisible by 16 (the project uses multiples of
32); output (N, C, S, S) logits. Trained from scratch. With 2 classes it has 17.3 M parameters.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.training.architectures.blocks import check_divisible, conv_bn_relu

UNET_WIDTHS = (64, 128, 256, 512, 1024)


def double_conv(in_channels: int, out_channels: int, mid_channels: int | None = None) -> nn.Sequential:
    """Two conv-BN-ReLU blocks: (N, in, H, W) -> (N, mid, H, W) -> (N, out, H, W)."""
    mid = mid_channels or out_channels
    return nn.Sequential(conv_bn_relu(in_channels, mid), conv_bn_relu(mid, out_channels))


class UNetBilinear(nn.Module):
    """U-Net with bilinear upsampling (see the module docstring)."""

    def __init__(self, in_channels: int = 1, classes: int = 1, widths: tuple[int, ...] = UNET_WIDTHS) -> None:
        """Builds the network.

        Args:
            in_channels: channels of the input image (1: grey).
            classes: C, the output channels (one logit per class).
            widths: channels per level, shallowest first; the bottom level gets half the
                last width. ``len(widths) - 1`` poolings.

        Raises:
            ValueError: fewer than 2 levels.
        """
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"UNetBilinear needs at least 2 levels, got widths {widths}")
        self.multiple = 2 ** (len(widths) - 1)
        levels = (*widths[:-1], widths[-1] // 2)  # what each encoder level outputs
        self.inc = double_conv(in_channels, levels[0])
        self.downs = nn.ModuleList(double_conv(a, b) for a, b in pairwise(levels))
        ups, below = [], levels[-1]
        for level in reversed(range(len(widths) - 1)):
            out = widths[max(level - 1, 0)]
            ups.append(double_conv(levels[level] + below, out, (levels[level] + below) // 2))
            below = out
        self.ups = nn.ModuleList(ups)
        self.head = nn.Conv2d(widths[0], classes, kernel_size=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, S, S) normalised images, S divisible by 16 -> (N, C, S, S) logits.

        Raises:
            ValueError: S is not divisible by 2 ** (levels - 1).
        """
        check_divisible(images, self.multiple, "UNetBilinear")
        features = [self.inc(images)]
        for down in self.downs:
            features.append(down(F.max_pool2d(features[-1], kernel_size=2)))
        x = features.pop()
        for up, skip in zip(self.ups, reversed(features)):
            upsampled = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
            x = up(torch.cat([skip, upsampled], dim=1))
        return self.head(x)
