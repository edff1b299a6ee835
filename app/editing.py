"""Mask edits of the workstation (no Qt): brush and eraser strokes, filling a closed outline, compact undo records.

Masks are (H, W) bool in frame pixels. Every function returns a new array; the session
applies it, and the undo stack (:mod:`app.edit_controller`) keeps :class:`PackedMask`
copies (one bit per pixel) of a class's mask before and after each edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

Point = tuple[float, float]
BRUSH_RANGE_PX = (1, 200)  # brush radius, frame px


def stroke(mask: np.ndarray, points: Sequence[Point], radius: int, value: bool) -> np.ndarray:
    """``mask`` with a round brush of ``radius`` px drawn along ``points`` (True: paint, False: erase).

    Args:
        mask: (H, W) bool.
        points: the stroke's (x, y) frame points, at least one; consecutive ones are joined.
        radius: brush radius, px, in :data:`BRUSH_RANGE_PX`.
        value: what the brush writes.

    Raises:
        ValueError: no points, or a radius out of range.
    """
    if not points:
        raise ValueError("a stroke needs at least one point")
    if not BRUSH_RANGE_PX[0] <= radius <= BRUSH_RANGE_PX[1]:
        raise ValueError(f"the brush radius must be {BRUSH_RANGE_PX[0]}-{BRUSH_RANGE_PX[1]} px, got {radius}")
    canvas = np.zeros(mask.shape, np.uint8)
    ends = [(int(round(x)), int(round(y))) for x, y in points]
    for start, end in zip(ends, ends[1:]):
        cv2.line(canvas, start, end, 1, thickness=2 * radius + 1, lineType=cv2.LINE_8)
    for point in ends:
        cv2.circle(canvas, point, radius, 1, thickness=-1)  # the brush's disk at every point: round joints and caps
    result = mask.copy()
    result[canvas.astype(bool)] = value
    return result


def fill_outline(mask: np.ndarray, seed: Point) -> np.ndarray:
    """``mask`` with the region a closed outline encloses around ``seed`` filled.

    The region is the 4-connected background around the seed (4-connected background is
    what an 8-connected outline closes off).

    Raises:
        ValueError: the seed is outside the frame or already on the mask, or the region
            reaches the frame's border (the outline around it is not closed).
    """
    height, width = mask.shape
    x, y = int(round(seed[0])), int(round(seed[1]))
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"the point ({x}, {y}) is outside the frame")
    if mask[y, x]:
        raise ValueError("the point is already on the mask: click inside a closed outline")
    region = np.zeros((height + 2, width + 2), np.uint8)
    cv2.floodFill(mask.astype(np.uint8), region, (x, y), 1, flags=4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    inside = region[1:-1, 1:-1].astype(bool)
    if inside[0].any() or inside[-1].any() or inside[:, 0].any() or inside[:, -1].any():
        raise ValueError("the outline around that point is not closed: it reaches the frame's border")
    return mask | inside


@dataclass(frozen=True)
class PackedMask:
    """An (H, W) bool mask stored at one bit per pixel."""

    bits: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def pack(cls, mask: np.ndarray) -> PackedMask:
        return cls(np.packbits(mask.astype(bool), axis=None), (int(mask.shape[0]), int(mask.shape[1])))

    def unpack(self) -> np.ndarray:
        count = self.shape[0] * self.shape[1]
        return np.unpackbits(self.bits, count=count).astype(bool).reshape(self.shape)
