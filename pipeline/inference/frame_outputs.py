"""One frame, from its pixels to what every consumer reports: the code path of ``trus segment`` and ``trus serve``.

The steps, in order, each a function so a caller can run them on different threads (``trus
segment`` overlaps them with the network; the service runs them on its pool):

1. :func:`prepare_frame`: the frame's pixel spacing (:func:`pipeline.imaging.calibration.calibrate`)
   and the network's input (``Segmenter.prepare``: crop, resize, diffusion filter);
2. ``Segmenter.segment_prepared``: the network, mapped back onto the frame;
3. :func:`frame_outputs`: the thresholded, post-processed masks, each class's area, the plane
   and the review flag;
4. :func:`mask_png` and :func:`overlay_png`: the PNG bytes written to disk or sent back.

So one frame gives the same mask, byte for byte, whether a file is segmented by the CLI, by the
service or by a script.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.imaging.calibration import Calibration, calibrate
from pipeline.imaging.depth_scale import TICK_MM
from pipeline.imaging.fan import detect_fan
from pipeline.imaging.frames import Frame
from pipeline.imaging.masks import pack_masks
from pipeline.imaging.png import encode_png
from pipeline.imaging.preprocessing import needs_fan
from pipeline.inference.measure import ClassArea, class_areas, draw_overlay

if TYPE_CHECKING:
    from pipeline.inference.predictor import PreparedFrame, Segmentation, Segmenter


@dataclass(frozen=True)
class ReadyFrame:
    """A frame ready for the network: its spacing and the network's input (:func:`prepare_frame`)."""

    calibration: Calibration
    prepared: PreparedFrame


@dataclass(frozen=True)
class FrameOutputs:
    """What a segmented frame reports.

    Attributes:
        masks: (C, H, W) bool at the frame's size, thresholded and post-processed as the model was evaluated.
        areas: one per class, in the model's class order: pixels and mm² (None without a spacing).
        calibration: the frame's pixel spacing and where it came from.
        plane: the most probable plane, or None for a model without a plane output.
        plane_probability: its probability in [0, 1], or None.
        review_reason: why a person should review the gland, or None.
    """

    masks: np.ndarray
    areas: list[ClassArea]
    calibration: Calibration
    plane: str | None
    plane_probability: float | None
    review_reason: str | None


def prepare_frame(segmenter: Segmenter, frame: Frame, tick_mm: float = TICK_MM,
                  spacing_mm: float | None = None) -> ReadyFrame:
    """Calibrates a frame's spacing and runs the model's preprocessing on it, detecting its fan once for both.

    Args:
        segmenter: the loaded model.
        frame: the frame as read (:func:`pipeline.imaging.frames.read_frames`).
        tick_mm: mm between the depth scale's interval ticks, > 0.
        spacing_mm: mm per px for a frame without a DICOM spacing or a readable depth scale, or None.
    """
    needs_fan_for_spacing = frame.spacing_mm is None  # the depth scale is read beside the fan
    fan = detect_fan(frame.gray) \
        if needs_fan_for_spacing or needs_fan(segmenter.contract.preprocess, frame.region_box) else None
    calibration = calibrate(frame.gray, frame.spacing_mm, tick_mm, spacing_mm, fan)
    return ReadyFrame(calibration, segmenter.prepare(frame.gray, frame.region_box, fan))


def frame_outputs(segmentation: Segmentation, calibration: Calibration, threshold: float) -> FrameOutputs:
    """The masks, areas, plane and review flag of a segmented frame.

    Args:
        segmentation: the network's output at the frame's size (``Segmenter.segment_prepared``).
        calibration: the frame's spacing (:func:`prepare_frame`).
        threshold: probability threshold in (0, 1), usually the model's own.
    """
    masks = segmentation.masks(threshold)
    plane = segmentation.plane
    probability = None if plane is None else segmentation.plane_probabilities[plane]  # type: ignore[index]
    return FrameOutputs(masks, class_areas(masks, segmentation.classes, calibration.spacing_mm), calibration,
                        plane, probability, segmentation.review_reason(threshold))


def mask_png(masks: np.ndarray) -> bytes:
    """The mask PNG's bytes: (C, H, W) bool masks packed one bit per class (:mod:`pipeline.imaging.masks`)."""
    return encode_png(pack_masks(masks))


def overlay_png(gray: np.ndarray, masks: np.ndarray) -> bytes:
    """The overlay PNG's bytes: the masks drawn over the (H, W) uint8 frame, RGB (:func:`draw_overlay`)."""
    return encode_png(draw_overlay(gray, masks))
