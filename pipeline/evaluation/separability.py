"""Frame-level separability: how well one score per frame tells frames with a class from frames without.

Used by ``benchmarks/lesion_separability.py`` (a model's largest lesion probability inside its
gland) and ``benchmarks/lesion_darkness.py`` (how dark the gland's darkest disk is).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Separability:
    """How frame scores separate positive from negative frames.

    Attributes:
        positives, negatives: numbers of frames with and without the class.
        auc: frame-level AUC in [0, 1].
        threshold: the highest score that keeps at least ``sensitivity`` of the positive frames
            (the "lower" quantile of their scores at 1 - sensitivity).
        negatives_above: negative frames scoring at least ``threshold``.
    """

    positives: int
    negatives: int
    auc: float
    threshold: float
    negatives_above: int


def separability(scores: np.ndarray, positive: np.ndarray, sensitivity: float) -> Separability:
    """The AUC of ``scores`` for ``positive`` frames, and the negatives left at ``sensitivity``.

    Args:
        scores: (N,) float frame scores.
        positive: (N,) bool, frames whose truth holds the class.
        sensitivity: share of positive frames to keep, in (0, 1].

    Raises:
        ValueError: no positive or no negative frame, or ``sensitivity`` outside (0, 1].
    """
    if not 0 < sensitivity <= 1:
        raise ValueError(f"sensitivity must be in (0, 1], got {sensitivity}")
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        raise ValueError(f"needs frames with and without the class, got {len(pos)} and {len(neg)}")
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    threshold = float(np.quantile(pos, 1.0 - sensitivity, method="lower"))
    return Separability(len(pos), len(neg), float(wins) / (len(pos) * len(neg)), threshold,
                        int((neg >= threshold).sum()))
