"""Connected components of a mask, labelled on the mask's bounding box only.

:func:`cv2.connectedComponentsWithStats` on a whole 1280x872 frame writes a label for every
pixel, most of them background; on the mask's bounding box it costs a fraction of that. The
box starts on an even row and column: OpenCV labels 2x2 blocks of pixels in raster order, so
with the blocks aligned as on the whole frame the components get the same labels, in the same
order (the first of equally large components is the same one), and the same statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Window = tuple[slice, slice]
"""(rows, columns) slices of a frame, with explicit, in-frame starts and stops."""


@dataclass(frozen=True, eq=False)
class BoxComponents:
    """A mask's 8-connected components, numbered as ``cv2.connectedComponentsWithStats`` numbers them on the frame.

    Attributes:
        count: labels, background (0) included: 1 for an empty mask.
        labels: (h, w) int32 labels of the box's pixels, 0 for background.
        stats: (count, 5) int32 rows of x, y, width, height (frame px) and area (px) per label
            (``cv2.CC_STAT_*``); row 0, the background, describes the box's background only.
        box: the labelled box of the frame.
        shape: (H, W) of the frame, px.
    """

    count: int
    labels: np.ndarray
    stats: np.ndarray
    box: Window
    shape: tuple[int, int]

    def component(self, label: int, window: Window | None = None) -> np.ndarray:
        """bool pixels of component ``label`` (>= 1) in ``window`` of the frame (None: the whole frame).

        Returns:
            (window height, window width) bool, False outside the box.
        """
        window = window or (slice(0, self.shape[0]), slice(0, self.shape[1]))
        out = np.zeros((window[0].stop - window[0].start, window[1].stop - window[1].start), bool)
        top, bottom = max(window[0].start, self.box[0].start), min(window[0].stop, self.box[0].stop)
        left, right = max(window[1].start, self.box[1].start), min(window[1].stop, self.box[1].stop)
        if top < bottom and left < right:
            labels = self.labels[top - self.box[0].start:bottom - self.box[0].start,
                                 left - self.box[1].start:right - self.box[1].start]
            np.equal(labels, label, out=out[top - window[0].start:bottom - window[0].start,
                                            left - window[1].start:right - window[1].start])
        return out


def box_components(mask: np.ndarray) -> BoxComponents:
    """The 8-connected components of a mask, labelled on its bounding box grown to an even start.

    Args:
        mask: (H, W) bool (or uint8 0/1).

    Returns:
        The components; their labels and statistics (but the background's) are those of
        ``cv2.connectedComponentsWithStats(mask, connectivity=8)`` on the whole frame.
    """
    pixels = np.asarray(mask, bool).view(np.uint8)
    height, width = pixels.shape
    x, y, w, h = cv2.boundingRect(pixels)
    if w == 0:
        return BoxComponents(1, np.zeros((0, 0), np.int32), np.array([[0, 0, width, height, height * width]], np.int32),
                             (slice(0, 0), slice(0, 0)), (height, width))
    box = (slice(y - y % 2, y + h), slice(x - x % 2, x + w))  # the 2x2 blocks aligned as on the frame
    count, labels, stats, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(pixels[box]), connectivity=8)
    stats[:, cv2.CC_STAT_LEFT] += box[1].start
    stats[:, cv2.CC_STAT_TOP] += box[0].start
    return BoxComponents(int(count), labels, stats, box, (height, width))
