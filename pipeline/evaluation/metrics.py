"""Segmentation metrics of one predicted mask against its truth: Dice, IoU, HD95 and ASSD (medpy), in px or mm.

Conventions for empty masks (the README's "Metrics"): Dice and IoU are NaN when truth and
prediction are both empty (the frame is not scored, see :mod:`pipeline.evaluation.summary`)
and 0 when exactly one is empty; HD95 and ASSD are defined only when both are non-empty,
NaN otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from medpy.metric.binary import assd, hd95

from pipeline.evaluation.summary import frame_overlap


@dataclass(frozen=True)
class MaskScores:
    """Scores of one predicted mask against its truth.

    Attributes:
        dice, iou: overlap in [0, 1]; NaN when both masks are empty.
        hd95: 95th percentile of the symmetric surface distances; NaN unless both masks are non-empty.
        assd: average symmetric surface distance (medpy's ``assd``); NaN unless both are non-empty.
            Both distances are in the spacing's units: px for spacing (1, 1), mm for the
            pixel spacing in mm.
        truth_pixels, predicted_pixels, intersection_pixels: pixel counts, px.
    """

    dice: float
    iou: float
    hd95: float
    assd: float
    truth_pixels: int
    predicted_pixels: int
    intersection_pixels: int


def _around_both(predicted: np.ndarray, truth: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the two masks' joint bounding box plus a 1 px margin, clipped to the frame.

    Surface distances computed inside it equal those on the whole frame: every surface pixel
    lies inside, and the margin keeps the erosion's edge where the frame's was.
    """
    rows = np.flatnonzero((predicted | truth).any(axis=1))
    columns = np.flatnonzero((predicted | truth).any(axis=0))
    height, width = truth.shape
    return (slice(max(rows[0] - 1, 0), min(rows[-1] + 2, height)),
            slice(max(columns[0] - 1, 0), min(columns[-1] + 2, width)))


def surface_distances(predicted: np.ndarray, truth: np.ndarray,
                      spacing: tuple[float, float] = (1.0, 1.0)) -> tuple[float, float]:
    """HD95 and ASSD of two (H, W) bool masks (medpy's ``hd95`` and ``assd``).

    A mask's surface is its pixels that an erosion by the 4-neighbour cross removes
    (medpy's default connectivity); distances run between the two surfaces.

    Args:
        predicted, truth: (H, W) bool masks of the same shape.
        spacing: (x, y) pixel spacing; the distances come out in its units.

    Returns:
        (hd95, assd), both >= 0; (NaN, NaN) unless both masks are non-empty.
    """
    if not predicted.any() or not truth.any():
        return math.nan, math.nan
    window = _around_both(predicted, truth)
    predicted, truth = predicted[window], truth[window]
    voxelspacing = (spacing[1], spacing[0])  # medpy takes (rows, columns)
    return float(hd95(predicted, truth, voxelspacing=voxelspacing)), float(assd(predicted, truth,
                                                                                   voxelspacing=voxelspacing))


def score_masks(predicted: np.ndarray, truth: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)) -> MaskScores:
    """Dice, IoU, HD95 and ASSD of two (H, W) boolean masks.

    Args:
        predicted, truth: (H, W) masks of the same shape (cast to bool).
        spacing: (x, y) pixel spacing for HD95 and ASSD (px by default).

    Raises:
        ValueError: the shapes differ.
    """
    if predicted.shape != truth.shape:
        raise ValueError(f"mask shapes differ: {predicted.shape} vs {truth.shape}")
    predicted, truth = predicted.astype(bool), truth.astype(bool)
    n_pred, n_true = int(predicted.sum()), int(truth.sum())
    intersection = int(np.logical_and(predicted, truth).sum())
    dice, iou = frame_overlap(np.array([n_true]), np.array([n_pred]), np.array([intersection]))
    distance_95, average = surface_distances(predicted, truth, spacing)
    return MaskScores(float(dice[0]), float(iou[0]), distance_95, average, n_true, n_pred, intersection)
