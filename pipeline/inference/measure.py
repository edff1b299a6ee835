"""Measurements and pictures of a segmentation, shared by the CLI, evaluation and the app."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# RGB colours per output channel, in order (gland green, lesion red, then others).
CLASS_COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 220, 90), (255, 60, 60), (60, 140, 255), (255, 200, 0), (200, 80, 255), (0, 220, 220),
)


@dataclass(frozen=True)
class ClassArea:
    """Area of one class's mask.

    Attributes:
        name: class name.
        pixels: number of mask pixels in the original frame.
        mm2: area in mm^2, or None when the frame's pixel spacing is unknown.
    """

    name: str
    pixels: int
    mm2: float | None


def class_areas(masks: np.ndarray, classes: tuple[str, ...] | list[str],
                spacing_mm: tuple[float, float] | None) -> list[ClassArea]:
    """Areas of each class mask.

    Args:
        masks: (C, H, W) bool masks at the original frame size.
        classes: the C class names.
        spacing_mm: (x, y) pixel spacing in mm, or None.
    """
    areas = []
    for name, mask in zip(classes, masks):
        pixels = int(np.count_nonzero(mask))
        mm2 = pixels * spacing_mm[0] * spacing_mm[1] if spacing_mm else None
        areas.append(ClassArea(name, pixels, mm2))
    return areas


def colour_for(index: int) -> tuple[int, int, int]:
    """RGB colour of output channel ``index``."""
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


def draw_overlay(gray: np.ndarray, masks: np.ndarray, opacity: float = 0.35,
                 colours: list[tuple[int, int, int]] | None = None) -> np.ndarray:
    """Blends class masks over a grey frame and outlines them.

    Args:
        gray: (H, W) uint8 frame.
        masks: (C, H, W) bool masks of the same size.
        opacity: fill opacity in [0, 1]; outlines are drawn opaque.
        colours: RGB per class; defaults to :data:`CLASS_COLOURS`.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB).astype(np.float32)
    outlines = []
    for index, mask in enumerate(masks):
        colour = np.float32(colours[index] if colours else colour_for(index))
        rgb[mask] = (1.0 - opacity) * rgb[mask] + opacity * colour
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        outlines.append((contours, tuple(int(c) for c in colour)))
    out = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    thickness = max(1, round(max(gray.shape) / 400))
    for contours, colour in outlines:
        cv2.drawContours(out, contours, -1, colour, thickness, lineType=cv2.LINE_AA)
    return out
