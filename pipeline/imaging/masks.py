"""Files written for a segmented frame: the mask PNG and the overlay PNG.

Mask PNG format (shared by the CLI, the app and the pipeline): single-channel uint8 at
the frame's own size, pixel value = sum of 2**c over the classes c present, so
overlapping classes survive (gland only = 1, lesion inside gland = 3).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

MAX_CLASSES = 8

# zlib level 1, default strategy, the PNG "Up" filter on every row: lossless like any PNG, and
# measured on 1280x872 frames, 768x768 network frames and bitmasks (benchmarks/png_codec.py)
# it decodes 1.6-4x faster than OpenCV's default (RLE, "Sub") at -9 % to +8 % the size.
# Every stage after pull decodes these files, training once per epoch.
PNG_WRITE_PARAMS = (cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_DEFAULT,
                    cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP)


def pack_masks(masks: np.ndarray) -> np.ndarray:
    """(C, H, W) bool -> (H, W) uint8 bitmask (bit c set where class c is present)."""
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


def write_png_atomically(path: Path, image: np.ndarray) -> None:
    """Writes a PNG via a temporary file and rename, so no half-written file remains.

    Args:
        path: target ``.png`` path; its folder must exist.
        image: (H, W) uint8 grey/bitmask or (H, W, 3) uint8 RGB.

    Raises:
        OSError: the image could not be encoded or written.
    """
    pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, encoded = cv2.imencode(".png", pixels, PNG_WRITE_PARAMS)
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_bytes(encoded.tobytes())
    temporary.replace(path)


def write_mask_and_overlay(out_dir: Path, stem: str, masks: np.ndarray, overlay_rgb: np.ndarray) -> tuple[Path, Path]:
    """Writes ``<stem>_mask.png`` (bitmask) and ``<stem>_overlay.png`` (RGB) into ``out_dir``.

    Args:
        out_dir: existing output folder.
        stem: file name stem, usually the frame's own.
        masks: (C, H, W) bool at the frame's size.
        overlay_rgb: (H, W, 3) uint8 RGB from ``draw_overlay``.

    Returns:
        The mask and overlay paths.
    """
    mask_path, overlay_path = out_dir / f"{stem}_mask.png", out_dir / f"{stem}_overlay.png"
    write_png_atomically(mask_path, pack_masks(masks))
    write_png_atomically(overlay_path, overlay_rgb)
    return mask_path, overlay_path
