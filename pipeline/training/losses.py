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


def hard_dice(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-frame, per-class Dice of the masks at probability > 0.5 (logits > 0).

    Same convention as ``pipeline.evaluation.metrics``: both masks empty -> 1, exactly one empty -> 0.

    Args:
        logits: (N, C, S, S) logits.
        targets: (N, C, S, S) float 0/1 truth.

    Returns:
        (N, C) float32 Dice in [0, 1].
    """
    predicted, truth = logits > 0, targets > 0.5
    intersection = (predicted & truth).sum(dim=(2, 3)).float()
    total = (predicted.sum(dim=(2, 3)) + truth.sum(dim=(2, 3))).float()
    return torch.where(total > 0, 2.0 * intersection / total.clamp_min(1.0), torch.ones_like(total))
