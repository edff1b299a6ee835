"""The training objective (Dice + BCE on logits) and the validation score (hard Dice)."""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
from torch import nn


class DiceBCELoss(nn.Module):
    """``dice_weight * soft Dice loss + bce_weight * binary cross-entropy``, per class (multilabel)."""

    def __init__(self, dice_weight: float, bce_weight: float) -> None:
        """Weights of the two terms (``train.dice_weight``, ``train.bce_weight``)."""
        super().__init__()
        self.dice_weight, self.bce_weight = dice_weight, bce_weight
        self.dice = smp.losses.DiceLoss(mode="multilabel", from_logits=True)
        self.bce = nn.BCEWithLogitsLoss()

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scalar loss of (N, C, S, S) logits against (N, C, S, S) float 0/1 targets."""
        return self.dice_weight * self.dice(logits, targets) + self.bce_weight * self.bce(logits, targets)

