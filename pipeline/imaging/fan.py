"""Finding the ultrasound fan (sector) in a frame, ignoring burned-in text and scales."""

from __future__ import annotations

import cv2
import numpy as np


def detect_fan_box(gray: np.ndarray, threshold: int = 10) -> tuple[int, int, int, int]:
    """Bounding box of the ultrasound fan.

    Thin bright overlays (text, depth-scale ticks, calipers outside the fan) are
    removed by a morphological opening whose kernel scales with the frame; the fan is
    the largest remaining connected region. Falls back to the whole frame when no
    region covers at least 5 % of it.

    Args:
        gray: (H, W) uint8 grey frame.
        threshold: grey level above which a pixel counts as image content (0-255).

    Returns:
        (x, y, width, height) in frame pixels.
    """
    height, width = gray.shape
    smooth = cv2.medianBlur(gray, 5)
    content = (smooth > threshold).astype(np.uint8)
    content = cv2.morphologyEx(content, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    k = max(7, min(height, width) // 30) | 1
    content = cv2.morphologyEx(content, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    count, _, stats, _ = cv2.connectedComponentsWithStats(content, connectivity=8)
    if count < 2:
        return 0, 0, width, height
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = (int(v) for v in stats[largest])
    if area < 0.05 * width * height:
        return 0, 0, width, height
    return x, y, w, h
