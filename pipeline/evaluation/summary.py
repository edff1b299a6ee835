"""The one score definition: per class, from per-frame pixel counts, for validation, selection and reports.

Per class, a frame is *scored* when its truth or its prediction holds the class. The class
Dice is the mean per-frame Dice over the scored frames, so a missed lesion (truth only)
scores 0, an invented one (prediction only) scores 0, and a frame with neither is not
counted; with no scored frame at all (nothing to find, nothing invented) it is 1.0. IoU
likewise. The selection score is the mean of the class Dice values.

The training loop (validation, ReduceLROnPlateau, the best checkpoint) and the evaluate
stage (``reports/metrics.json``) both call :func:`class_summary`; numpy only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ClassSummary:
    """One class's score over a set of frames.

    Attributes:
        dice: mean per-frame Dice over the scored frames, in [0, 1]; 1.0 with none scored.
        iou: mean per-frame IoU over the scored frames, in [0, 1]; 1.0 with none scored.
        frames_with_class: frames whose truth holds the class.
        missed_frames: frames whose truth holds it and whose prediction does not.
        false_positive_frames: frames whose prediction holds it and whose truth does not.
        frames_scored: frames whose truth or prediction holds it (those Dice and IoU average).
    """

    dice: float
    iou: float
    frames_with_class: int
    missed_frames: int
    false_positive_frames: int
    frames_scored: int

    def as_dict(self) -> dict[str, float | int]:
        """Field name -> value, JSON-ready."""
        return asdict(self)


def _counts(truth_px: np.ndarray, predicted_px: np.ndarray, intersection_px: np.ndarray) -> tuple[np.ndarray, ...]:
    """The three count arrays as (N,) float64, checked.

    Raises:
        ValueError: shapes differ or are not 1-D, a count is negative or not an integer,
            or an intersection exceeds its truth or prediction.
    """
    arrays = tuple(np.asarray(a, dtype=np.float64) for a in (truth_px, predicted_px, intersection_px))
    if any(a.ndim != 1 or a.shape != arrays[0].shape for a in arrays):
        raise ValueError(f"pixel counts must be three (N,) arrays, got shapes {[a.shape for a in arrays]}")
    truth, predicted, intersection = arrays
    if any((a < 0).any() or (a != np.round(a)).any() for a in arrays):
        raise ValueError("pixel counts must be non-negative integers")
    if (intersection > np.minimum(truth, predicted)).any():
        raise ValueError("an intersection exceeds its truth or prediction pixel count")
    return truth, predicted, intersection


def frame_overlap(truth_px: np.ndarray, predicted_px: np.ndarray,
                  intersection_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame Dice and IoU of one class from pixel counts.

    Args:
        truth_px: (N,) truth pixels of the class per frame, >= 0.
        predicted_px: (N,) predicted pixels per frame, >= 0.
        intersection_px: (N,) pixels in both, <= min(truth, predicted).

    Returns:
        (N,) Dice ``2 I / (T + P)`` and (N,) IoU ``I / (T + P - I)``, float64 in [0, 1];
        NaN on frames where truth and prediction are both empty (not scored).

    Raises:
        ValueError: see the checks of the counts (shapes, negative counts, intersection too large).
    """
    truth, predicted, intersection = _counts(truth_px, predicted_px, intersection_px)
    total = truth + predicted
    scored = total > 0
    dice = np.full(total.shape, np.nan)
    iou = np.full(total.shape, np.nan)
    dice[scored] = 2.0 * intersection[scored] / total[scored]
    iou[scored] = intersection[scored] / (total[scored] - intersection[scored])
    return dice, iou


def class_summary(truth_px: np.ndarray, predicted_px: np.ndarray, intersection_px: np.ndarray) -> ClassSummary:
    """The class score over N frames from their pixel counts (see the module docstring).

    Args:
        truth_px: (N,) truth pixels of the class per frame, >= 0.
        predicted_px: (N,) predicted pixels per frame, >= 0.
        intersection_px: (N,) pixels in both, <= min(truth, predicted).

    Returns:
        Mean Dice and IoU over the frames where truth or prediction is non-empty (1.0 when
        there is none), and the frame counts.

    Raises:
        ValueError: see :func:`frame_overlap`.
    """
    dice, iou = frame_overlap(truth_px, predicted_px, intersection_px)
    truth, predicted = np.asarray(truth_px) > 0, np.asarray(predicted_px) > 0
    scored = ~np.isnan(dice)
    return ClassSummary(
        dice=float(dice[scored].mean()) if scored.any() else 1.0,
        iou=float(iou[scored].mean()) if scored.any() else 1.0,
        frames_with_class=int(truth.sum()), missed_frames=int((truth & ~predicted).sum()),
        false_positive_frames=int((~truth & predicted).sum()), frames_scored=int(scored.sum()),
    )


def selection_score(summaries: Iterable[ClassSummary]) -> float:
    """The model-selection score: the mean of the classes' Dice, in [0, 1].

    Raises:
        ValueError: no class.
    """
    dice = [summary.dice for summary in summaries]
    if not dice:
        raise ValueError("no class to score")
    return float(np.mean(dice))
