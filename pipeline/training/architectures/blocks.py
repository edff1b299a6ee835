"""Building blocks shared by the project's own architectures (SegNet, UNetBilinear)."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (padding 1, no bias), BatchNorm, ReLU: (N, in, H, W) -> (N, out, H, W)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def check_divisible(images: torch.Tensor, multiple: int, name: str) -> None:
    """Rejects inputs whose height or width is not a multiple of ``multiple`` (skipped while tracing).

    Args:
        images: (N, C, H, W).
        multiple: 2 ** (number of 2x2 poolings) of the network.
        name: the architecture, for the message.

    Raises:
        ValueError: H or W is not a multiple of ``multiple``.
    """
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return  # the exporter traces one fixed, valid size; a Python check would only warn there
    height, width = images.shape[-2:]
    if height % multiple or width % multiple:
        raise ValueError(f"{name} needs an input side divisible by {multiple}; got {height}x{width}")
