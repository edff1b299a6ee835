"""Segmentation metrics on binary masks: Dice, IoU, HD95 (medpy), in px and mm.

Conventions for empty masks (documented in the README): both empty -> Dice 1, IoU 1,
HD95 0; exactly one empty -> Dice 0, IoU 0, HD95 NaN (undefined).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from medpy.metric.binary import hd95


@dataclass(frozen=True)
class MaskScores:
    """Scores of one predicted mask against its truth.

    Attributes:
        dice, iou: overlap in [0, 1].
        hd95: 95th percentile symmetric surface distance in the spacing's units
            (px when spacing is (1, 1), mm when it is the pixel spacing in mm); NaN when undefined.
        truth_pixels, predicted_pixels: mask sizes, px.
    """

    dice: float
    iou: float
    hd95: float
    truth_pixels: int
    predicted_pixels: int


def score_masks(predicted: np.ndarray, truth: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)) -> MaskScores:
    """Dice, IoU and HD95 of two (H, W) boolean masks.

    Args:
        predicted, truth: (H, W) bool masks of the same shape.
        spacing: (x, y) pixel spacing for HD95 (px by default).
    """
    if predicted.shape != truth.shape:
        raise ValueError(f"mask shapes differ: {predicted.shape} vs {truth.shape}")
    predicted, truth = predicted.astype(bool), truth.astype(bool)
    n_pred, n_true = int(predicted.sum()), int(truth.sum())
    intersection = int(np.logical_and(predicted, truth).sum())
    union = n_pred + n_true - intersection
    if n_pred == 0 and n_true == 0:
        return MaskScores(1.0, 1.0, 0.0, 0, 0)
    if n_pred == 0 or n_true == 0:
        return MaskScores(0.0, 0.0, math.nan, n_true, n_pred)
    distance = float(hd95(predicted, truth, voxelspacing=(spacing[1], spacing[0])))
    return MaskScores(2.0 * intersection / (n_pred + n_true), intersection / union, distance, n_true, n_pred)
