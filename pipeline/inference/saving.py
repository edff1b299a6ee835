"""The files written for a segmented frame: its mask PNG and its overlay PNG (CLI and app)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.imaging.masks import pack_masks
from pipeline.imaging.png import write_png_atomically


def mask_and_overlay_paths(out_dir: Path, stem: str) -> tuple[Path, Path]:
    """``out_dir/<stem>_mask.png`` and ``out_dir/<stem>_overlay.png``."""
    return out_dir / f"{stem}_mask.png", out_dir / f"{stem}_overlay.png"


def write_mask_and_overlay(out_dir: Path, stem: str, masks: np.ndarray, overlay_rgb: np.ndarray) -> tuple[Path, Path]:
    """Writes ``<stem>_mask.png`` (bitmask, see :mod:`pipeline.imaging.masks`) and ``<stem>_overlay.png`` (RGB).

    Args:
        out_dir: existing output folder.
        stem: file name stem, usually the frame's own.
        masks: (C, H, W) bool at the frame's size.
        overlay_rgb: (H, W, 3) uint8 RGB from ``draw_overlay``.

    Returns:
        The mask and overlay paths.
    """
    mask_path, overlay_path = mask_and_overlay_paths(out_dir, stem)
    write_png_atomically(mask_path, pack_masks(masks))
    write_png_atomically(overlay_path, overlay_rgb)
    return mask_path, overlay_path
