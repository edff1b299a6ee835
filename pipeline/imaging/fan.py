"""Finding the ultrasound fan (sector) in a frame, ignoring everything burned in around it.

The fan is the largest region of image content that survives a morphological opening:
text, depth-scale ticks, calipers, dotted lines and small markers are thinner than the
opening's disk, so they vanish, while logos and icons in the margins stay separate and
smaller. Header and footer bars spanning the frame's width are never the fan. The
opening rounds the fan's corners; they are recovered from the content within a few px
of the surviving region, and holes (dark anatomy, logos inside the fan) are filled.

Works with the probe at the top or the bottom and fields of view up to 180 deg. The
opening runs on a copy shrunk to about 240 px, so a 1280x872 frame costs a few ms.
Every step is a deterministic OpenCV/numpy operation: the same frame gives the same
fan wherever it runs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

MIN_FAN_FRACTION = 0.05  # smaller regions are not a fan; the whole frame is used instead
_WORK_SIDE = 240  # the opening runs with the frame's shorter side shrunk to about this, px


@dataclass(frozen=True, eq=False)
class Fan:
    """The ultrasound fan of a frame.

    Attributes:
        box: (x, y, width, height) of the fan's bounding box, frame px.
        found: False when no fan was found and the fan is the whole frame.
        shape: (H, W) of the frame, px.
        outline: (N, 1, 2) int32 x, y px of the fan's outer contour (empty when not found).
    """

    box: tuple[int, int, int, int]
    found: bool
    shape: tuple[int, int]
    outline: np.ndarray = field(repr=False)

    @functools.cached_property
    def mask(self) -> np.ndarray:
        """(H, W) bool, True inside the fan (holes filled); all True when not ``found``."""
        if not self.found:
            return np.ones(self.shape, bool)
        mask = np.zeros(self.shape, np.uint8)
        cv2.drawContours(mask, [self.outline], -1, 1, thickness=cv2.FILLED)
        return mask.astype(bool)


def detect_fan(gray: np.ndarray, threshold: int = 10) -> Fan:
    """Finds the ultrasound fan: its bounding box and (lazily) its mask.

    Args:
        gray: (H, W) uint8 grey frame (colour overlays already converted to grey).
        threshold: grey levels above the frame's black level (the 1st percentile of the
            5x5-median-filtered frame, capped at 40) that count as image content, 0-255.

    Returns:
        The fan; the whole frame (``found`` False) when no region of content covers at
        least 5 % of it.

    Raises:
        ValueError: ``gray`` is not a 2-D uint8 array.
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 grey frame, got {gray.dtype} {gray.shape}")
    height, width = gray.shape
    smooth = cv2.medianBlur(gray, 5)  # speckle, noise and JPEG ringing
    _, content = cv2.threshold(smooth, _black_level(smooth) + threshold, 255, cv2.THRESH_BINARY)
    kernel = max(7, min(height, width) // 30) | 1  # the opening's disk: wider than text strokes, px
    found = _near_core(content, kernel)
    if found is None:
        return Fan((0, 0, width, height), False, (height, width), np.zeros((0, 1, 2), np.int32))
    near, (x0, y0) = found
    roi = content[y0:y0 + near.shape[0], x0:x0 + near.shape[1]]
    contours, _ = cv2.findContours(roi & near, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0))
    outline = max(contours, key=cv2.contourArea)  # the fan; other bits are text within reach of it
    x, y, w, h = cv2.boundingRect(outline)
    return Fan((int(x), int(y), int(w), int(h)), True, (height, width), outline)


def detect_fan_box(gray: np.ndarray, threshold: int = 10) -> tuple[int, int, int, int]:
    """Bounding box (x, y, width, height) px of the ultrasound fan; see :func:`detect_fan`."""
    return detect_fan(gray, threshold).box


def _black_level(smooth: np.ndarray) -> int:
    """The frame's black level: the 1st percentile of every 4th pixel's grey level, capped at 40 (0-255)."""
    sample = np.ascontiguousarray(smooth[::4, ::4])
    counts = cv2.calcHist([sample], [0], None, [256], [0, 256]).ravel()
    return min(40, int(np.searchsorted(np.cumsum(counts), 0.01 * sample.size)))


def _near_core(content: np.ndarray, kernel: int) -> tuple[np.ndarray, tuple[int, int]] | None:
    """Where the fan may lie: near the largest opened region that is not a full-width bar.

    The opening (a disk of about ``kernel`` px) runs on a copy shrunk by an integer
    factor so the shorter side is about ``_WORK_SIDE`` px (a majority vote per cell).
    The chosen region is grown by the depth the opening cuts into a right-angled corner
    (0.21 of the disk) plus one cell, and scaled back to the frame.

    Args:
        content: (H, W) uint8 0/255, image content.
        kernel: the opening's disk diameter, frame px.

    Returns:
        (h, w) uint8 0/255 mask of a window of the frame and the window's top-left (x, y) px,
        or None when no region covers ``MIN_FAN_FRACTION`` of the frame.
    """
    height, width = content.shape
    factor = max(1, min(height, width) // _WORK_SIDE)
    sh, sw = height // factor, width // factor
    small = cv2.resize(content[:sh * factor, :sw * factor], (sw, sh), interpolation=cv2.INTER_AREA)
    _, small = cv2.threshold(small, 127, 1, cv2.THRESH_BINARY)  # a majority vote per factor x factor cell
    disk = max(3, round(kernel / factor)) | 1
    opened = cv2.morphologyEx(small, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (disk, disk)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    best, best_area = 0, MIN_FAN_FRACTION * sh * sw
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if x == 0 and x + w == sw and h < 0.3 * sh:  # a header or footer bar across the frame
            continue
        if area >= best_area:
            best, best_area = label, area
    if best == 0:
        return None
    reach = int(np.ceil(0.21 * disk)) + 1  # in shrunk px
    x, y, w, h, _ = (int(v) for v in stats[best])
    x0, y0, x1, y1 = max(0, x - reach), max(0, y - reach), min(sw, x + w + reach), min(sh, y + h + reach)
    near = cv2.dilate((labels[y0:y1, x0:x1] == best).astype(np.uint8) * np.uint8(255),
                      np.ones((2 * reach + 1,) * 2, np.uint8))
    near = cv2.resize(near, ((x1 - x0) * factor, (y1 - y0) * factor), interpolation=cv2.INTER_NEAREST)
    # cells on the last row/column also cover the frame's leftover pixels (fewer than ``factor``)
    near = cv2.copyMakeBorder(near, 0, height - sh * factor if y1 == sh else 0,
                              0, width - sw * factor if x1 == sw else 0, cv2.BORDER_REPLICATE)
    return near, (x0 * factor, y0 * factor)
