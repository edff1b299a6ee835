"""The project's own architectures, for what segmentation_models_pytorch lacks.

``model.arch: SegNet`` or ``UNetBilinear`` selects them through the same factory
(:func:`pipeline.training.model.build_model`). Each maps (N, 1, S, S) normalised grey images
to (N, C, S, S) logits and trains from scratch: they have no pretrained encoder, so
``model.encoder`` does not apply (see :class:`pipeline.config.ModelParams`).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from pipeline.training.architectures.segnet import SegNet
from pipeline.training.architectures.unet_bilinear import UNetBilinear

# name (as in params.yaml, pipeline.config.PROJECT_ARCHS) -> constructor(in_channels=, classes=)
PROJECT_ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"SegNet": SegNet, "UNetBilinear": UNetBilinear}

__all__ = ["PROJECT_ARCHITECTURES", "SegNet", "UNetBilinear"]
