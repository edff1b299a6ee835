"""Where a training run stands: epochs done, the best validation score, early stopping, the epoch kept.

Pure bookkeeping on validation scores (``val/score``, in [0, 1]); the loop updates a
:class:`Progress` after every epoch and saves it in the resume state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

KEEP_CHOICES = ("last", "best")


@dataclass(frozen=True)
class Progress:
    """A run after ``epoch`` epochs.

    Attributes:
        epoch: epochs completed, >= 0.
        best_score: the best validation score so far, None before the first epoch.
        best_epoch: the (1-based) epoch that scored it, 0 before the first epoch.
        stale_epochs: epochs since the best one (0 when the last epoch was the best).
    """

    epoch: int = 0
    best_score: float | None = None
    best_epoch: int = 0
    stale_epochs: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Field name -> value, for the resume state."""
        return asdict(self)


def improves(progress: Progress, score: float) -> bool:
    """True when ``score`` beats the best so far (strictly: a tie keeps the earlier epoch)."""
    return progress.best_score is None or score > progress.best_score


def advance(progress: Progress, score: float) -> Progress:
    """The progress after one more epoch that scored ``score``."""
    epoch = progress.epoch + 1
    if improves(progress, score):
        return Progress(epoch=epoch, best_score=score, best_epoch=epoch, stale_epochs=0)
    return replace(progress, epoch=epoch, stale_epochs=progress.stale_epochs + 1)


def stops_early(progress: Progress, patience: int | None) -> bool:
    """True when ``patience`` (``train.early_stopping_patience``) epochs in a row brought no better score."""
    return patience is not None and progress.stale_epochs >= patience


def finished(progress: Progress, epochs: int, patience: int | None) -> bool:
    """True when the run needs no further epoch: the budget ``epochs`` is spent, or it stopped early."""
    return progress.epoch >= epochs or stops_early(progress, patience)


def kept_epoch(scores: Sequence[float], keep: str) -> int:
    """The (1-based) epoch whose model the checkpoint holds.

    Args:
        scores: the validation score of every epoch run, in order (at least one).
        keep: ``last`` (the final epoch) or ``best`` (the first epoch with the highest score).

    Raises:
        ValueError: no epoch, or an unknown ``keep``.
    """
    if not scores or keep not in KEEP_CHOICES:
        raise ValueError(f"need at least one epoch and keep in {KEEP_CHOICES}, got {len(scores)} and {keep!r}")
    if keep == "last":
        return len(scores)
    return max(range(len(scores)), key=lambda index: (scores[index], -index)) + 1
