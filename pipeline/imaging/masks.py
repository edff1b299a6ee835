"""The mask file format shared by the pipeline, the CLI and the app: one bitmask PNG per frame.

A mask file is a single-channel uint8 PNG at the frame's own size whose pixel value is the
sum of 2**c over the classes c present there, so overlapping classes survive (gland only = 1,
lesion inside the gland = 3). Up to :data:`MAX_CLASSES` classes fit.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

MAX_CLASSES = 8


def pack_masks(masks: np.ndarray) -> np.ndarray:
    """(C, H, W) bool -> (H, W) uint8 bitmask (bit c set where class c is present).

    Raises:
        ValueError: more than :data:`MAX_CLASSES` channels.
    """
    if masks.shape[0] > MAX_CLASSES:
        raise ValueError(f"at most {MAX_CLASSES} classes fit in a uint8 mask, got {masks.shape[0]}")
    packed = np.zeros(masks.shape[1:], np.uint8)
    for index, mask in enumerate(masks):
        packed |= mask.astype(np.uint8) << index
    return packed


def unpack_masks(packed: np.ndarray, n_classes: int) -> np.ndarray:
    """(H, W) uint8 bitmask -> (n_classes, H, W) bool; inverse of :func:`pack_masks`."""
    return np.stack([(packed >> index) & 1 for index in range(n_classes)]).astype(bool)


def read_bitmask(path: Path) -> np.ndarray:
    """Reads a bitmask PNG as (H, W) uint8, exactly as written.

    Raises:
        FileNotFoundError: the file is missing or not a single-channel PNG.
    """
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None or mask.ndim != 2:
        raise FileNotFoundError(f"{path}: missing or not a single-channel mask PNG")
    return mask
