"""Frames the model is unsure about, flagged for a person to review.

The signal, per frame, from the gland's probability map at the frame's size:

- **no gland**: nothing above the threshold;
- **in pieces**: the thresholded gland (before post-processing keeps its largest part) has
  more than one component of at least ``MIN_PIECE_FRACTION`` of the largest;
- **uncertain border**: the mean of 4 p (1 - p) over a band around the gland's outline
  (``BAND_FRACTION`` of its equivalent diameter on each side, at least 2 px), from 0 (every
  border pixel certain) to 1 (every border pixel at p = 0.5). A sharp, confident outline
  scores low; a gland the model half sees, blurred into its surroundings, scores high;
- **fills the frame**: the gland covers every pixel of the frame, so it has no border to judge
  (a model that sees gland everywhere has failed on the frame).

The uncertainty's threshold is calibrated per model by the export stage on the validation
frames (:func:`calibrate_review`): a frame "needed review" when its gland Dice is below
``dice_floor``, and the threshold is the one that best separates those frames from the others
(Youden's J). It is stored in the model's contract as ``review`` (:class:`ReviewSpec`), so
the app and ``trus segment`` flag alike; a model without it flags only absent glands and
glands in pieces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from pipeline.imaging.components import box_components

BAND_FRACTION = 0.05  # the border band's half-width, over the gland's equivalent diameter
MIN_PIECE_FRACTION = 0.05  # a second piece counts from this share of the largest piece's area
DICE_FLOOR = 0.9  # the default gland Dice below which a validation frame needed review


@dataclass(frozen=True)
class ReviewSignal:
    """One frame's signal.

    Attributes:
        pieces: components of the thresholded gland counted as pieces (0: no gland).
        uncertainty: mean 4 p (1 - p) over the border band, in [0, 1]; None without a gland or
            border (``fills_frame``).
        fills_frame: the gland covers the whole frame.
    """

    pieces: int
    uncertainty: float | None
    fills_frame: bool = False


@dataclass(frozen=True)
class ReviewSpec:
    """When a frame is flagged (the contract's ``review``), and what the calibration measured.

    Attributes:
        uncertainty: flag a frame whose border uncertainty is above this, in [0, 1].
        dice_floor: gland Dice below which a validation frame counted as needing review.
        frames: validation frames with a gland in their truth, calibrated on.
        needing_review: of them, frames with a Dice below the floor.
        sensitivity: share of those flagged at this threshold (None without any).
        specificity: share of the others not flagged (None without any).
    """

    uncertainty: float
    dice_floor: float
    frames: int
    needing_review: int
    sensitivity: float | None
    specificity: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ReviewSpec:
        """Parses :meth:`to_dict`; raises ValueError on a missing or out-of-range value."""
        spec = cls(uncertainty=float(values["uncertainty"]), dice_floor=float(values["dice_floor"]),
                   frames=int(values["frames"]), needing_review=int(values["needing_review"]),
                   sensitivity=None if values.get("sensitivity") is None else float(values["sensitivity"]),
                   specificity=None if values.get("specificity") is None else float(values["specificity"]))
        if not (0.0 <= spec.uncertainty <= 1.0 and 0.0 < spec.dice_floor <= 1.0):
            raise ValueError(f"review thresholds out of range: {values!r}")
        return spec


def review_signal(gland_probability: np.ndarray, threshold: float) -> ReviewSignal:
    """The signal of one frame.

    Args:
        gland_probability: (H, W) float gland probabilities in [0, 1], at the frame's size.
        threshold: the probability a gland pixel exceeds.
    """
    found = box_components(gland_probability > threshold)  # numbered as on the whole frame
    if found.count <= 1:
        return ReviewSignal(0, None)
    areas = found.stats[1:, cv2.CC_STAT_AREA]
    largest = 1 + int(np.argmax(areas))
    pieces = int((areas >= MIN_PIECE_FRACTION * areas.max()).sum())
    half_width = max(2, round(BAND_FRACTION * math.sqrt(4.0 * areas.max() / math.pi)))
    x, y, w, h = (int(value) for value in found.stats[largest, :4])
    margin = half_width + 1  # the work is on the gland's box, with room for the band outside it
    rows = slice(max(0, y - margin), min(found.shape[0], y + h + margin))
    columns = slice(max(0, x - margin), min(found.shape[1], x + w + margin))
    gland = found.component(largest, (rows, columns)).view(np.uint8)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * half_width + 1, 2 * half_width + 1))
    band = cv2.dilate(gland, disk).astype(bool) & ~cv2.erode(gland, disk).astype(bool)
    if not band.any():  # no background in the box, which is then the whole frame: no border anywhere
        return ReviewSignal(pieces, None, fills_frame=True)
    p = gland_probability[rows, columns][band].astype(np.float64)
    return ReviewSignal(pieces, float(np.mean(4.0 * p * (1.0 - p))))


def review_reason(signal: ReviewSignal, spec: ReviewSpec | None) -> str | None:
    """Why the frame should be reviewed, or None; without a spec only a missing, broken or frame-filling gland is
    flagged."""
    if signal.pieces == 0:
        return "no gland found"
    if signal.pieces > 1:
        return f"the gland is in {signal.pieces} pieces"
    if signal.fills_frame:
        return "the gland fills the whole frame"
    if spec is not None and signal.uncertainty is not None and signal.uncertainty > spec.uncertainty:
        return f"uncertain gland border ({signal.uncertainty:.3f} > {spec.uncertainty:.3f})"
    return None


def calibrate_review(uncertainties: Sequence[float], dices: Sequence[float],
                     dice_floor: float = DICE_FLOOR) -> ReviewSpec:
    """The uncertainty threshold that best tells frames below ``dice_floor`` from the others.

    Of the ways to split the observed uncertainties (a frame is flagged when strictly above
    the threshold), the one with the largest Youden's J = sensitivity + specificity - 1, on a
    tie the one flagging fewer frames; the threshold is then midway between the highest
    uncertainty kept and the lowest flagged. Without a frame below the floor, the highest uncertainty
    seen: only frames less certain than every validation frame are flagged. With only such
    frames, 0: every frame is flagged.

    Args:
        uncertainties: per validation frame with a gland in its truth and its prediction, the
            border uncertainty.
        dices: the same frames' gland Dice.
        dice_floor: in (0, 1].

    Raises:
        ValueError: no frames, or lists of different lengths.
    """
    u, d = np.asarray(uncertainties, float), np.asarray(dices, float)
    if len(u) == 0 or len(u) != len(d):
        raise ValueError(f"calibration needs one Dice per uncertainty and at least one frame, got {len(u)} and {len(d)}")
    bad = d < dice_floor

    def spec(threshold: float) -> ReviewSpec:
        flagged = u > threshold
        sensitivity = float(flagged[bad].mean()) if bad.any() else None
        specificity = float((~flagged[~bad]).mean()) if (~bad).any() else None
        return ReviewSpec(threshold, dice_floor, len(u), int(bad.sum()), sensitivity, specificity)

    if not bad.any():
        return spec(float(u.max()))
    if bad.all():
        return spec(0.0)
    candidates = np.unique(np.concatenate([[0.0], np.nextafter(u, -np.inf)]))
    scores = [((u > t)[bad].mean() + (~(u > t))[~bad].mean() - 1.0, t) for t in candidates]
    flagged = u > max(scores)[1]
    lowest_flagged = float(u[flagged].min())
    highest_kept = float(u[~flagged].max()) if (~flagged).any() else 0.0
    return spec((highest_kept + lowest_flagged) / 2)  # midway: the same frames flagged, the most margin
