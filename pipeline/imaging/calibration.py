"""A frame's pixel spacing and where it came from: the one calibration chain of the CLI and the app.

In this order (:func:`calibrate`):

1. ``dicom``: the DICOM file's own spacing (its ultrasound region, else PixelSpacing);
2. ``depth_scale``: read from the depth scale burned in beside the fan
   (:func:`pipeline.imaging.depth_scale.read_depth_scale`, ``tick_mm`` between its ticks);
3. ``manual``: a spacing the user gave (``--spacing-mm``, or two points and a distance in
   the app: :func:`manual_spacing`);
4. ``none``: pixels only; measurements in mm are off, and :attr:`Calibration.note` says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.imaging.depth_scale import TICK_MM, DepthScaleError, read_depth_scale
from pipeline.imaging.fan import Fan

DICOM, DEPTH_SCALE, MANUAL, NONE = "dicom", "depth_scale", "manual", "none"
SPACING_SOURCES = {DICOM: "the DICOM file (its ultrasound region, else PixelSpacing)",
                   DEPTH_SCALE: "the depth scale burned into the frame",
                   MANUAL: "a manual calibration (--spacing-mm, or two points and their distance in the app)",
                   NONE: "none"}
"""Each source -> how a person is told it."""

Spacing = tuple[float, float]


@dataclass(frozen=True)
class Calibration:
    """A frame's pixel spacing.

    Attributes:
        spacing_mm: (x, y) mm per px, both > 0, or None (source ``none``).
        source: a key of :data:`SPACING_SOURCES`.
        note: one line: how the spacing was found, or why there is none.
    """

    spacing_mm: Spacing | None
    source: str
    note: str

    @property
    def described(self) -> str:
        """'0.1061 x 0.1061 mm/px from the depth scale burned into the frame', or 'none (why)'."""
        if self.spacing_mm is None:
            return f"none ({self.note})"
        return f"{self.spacing_mm[0]:.4g} x {self.spacing_mm[1]:.4g} mm/px from {SPACING_SOURCES[self.source]}"


def _positive_spacing(name: str, value: float) -> float:
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number of mm per px > 0, got {value!r}")
    return float(value)


def manual_spacing(start_xy: tuple[float, float], end_xy: tuple[float, float], distance_mm: float) -> float:
    """The spacing, mm per px, that makes two points ``distance_mm`` apart (square pixels).

    Args:
        start_xy, end_xy: the points, frame px.
        distance_mm: their true distance, mm, > 0.

    Raises:
        ValueError: a distance that is not > 0, or points less than 2 px apart.
    """
    _positive_spacing("the distance", distance_mm)
    length_px = math.dist(start_xy, end_xy)
    if length_px < 2.0:
        raise ValueError(f"the two calibration points are {length_px:.1f} px apart; put them at least 2 px apart")
    return distance_mm / length_px


def calibrate(gray: np.ndarray, dicom_spacing_mm: Spacing | None = None, tick_mm: float = TICK_MM,
              manual_mm: float | None = None, fan: Fan | None = None) -> Calibration:
    """A frame's spacing through the chain DICOM, depth scale, manual, none (see the module's docstring).

    Args:
        gray: (H, W) uint8 grey frame.
        dicom_spacing_mm: the spacing its DICOM file gives ((x, y) mm per px), or None.
        tick_mm: mm between the depth scale's interval ticks, > 0.
        manual_mm: a square pixel spacing the user gave, mm per px, > 0, or None.
        fan: the frame's fan when already detected (:func:`pipeline.imaging.fan.detect_fan`), or None.

    Raises:
        ValueError: a spacing or interval that is not a finite number > 0.
    """
    if dicom_spacing_mm is not None:
        spacing = (_positive_spacing("the DICOM spacing", dicom_spacing_mm[0]),
                   _positive_spacing("the DICOM spacing", dicom_spacing_mm[1]))
        return Calibration(spacing, DICOM, "from the DICOM file")
    try:
        scale = read_depth_scale(gray, tick_mm, fan=fan)
    except DepthScaleError as error:
        unread = str(error)
    else:
        return Calibration((scale.mm_per_px, scale.mm_per_px), DEPTH_SCALE, scale.summary)
    if manual_mm is not None:
        value = _positive_spacing("the manual spacing", manual_mm)
        return Calibration((value, value), MANUAL, f"given by the user; {unread}")
    return Calibration(None, NONE, f"no DICOM spacing, {unread}, no manual calibration")
