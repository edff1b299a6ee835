"""Scoring predictions on the original frames: one row per frame and class, and the per-class summary."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.evaluation.metrics import score_masks


def frame_rows(frame_id: str, patient: str, predicted: np.ndarray, truth: np.ndarray,
               classes: Sequence[str], spacing_mm: tuple[float, float] | None) -> list[dict]:
    """Per-class score rows of one frame.

    Args:
        predicted, truth: (C, H, W) bool masks at the original frame size.
        spacing_mm: (x, y) mm per px, or None (then ``hd95_mm`` is NaN).
    """
    rows = []
    for channel, name in enumerate(classes):
        in_px = score_masks(predicted[channel], truth[channel])
        hd95_mm = math.nan
        if spacing_mm is not None and not math.isnan(in_px.hd95):
            hd95_mm = score_masks(predicted[channel], truth[channel], spacing_mm).hd95
        rows.append({"frame_id": frame_id, "patient": patient, "class": name, "dice": in_px.dice,
                     "iou": in_px.iou, "hd95_px": in_px.hd95, "hd95_mm": hd95_mm,
                     "truth_px": in_px.truth_pixels, "predicted_px": in_px.predicted_pixels})
    return rows


def summarise(per_frame: pd.DataFrame, classes: Sequence[str]) -> dict[str, dict[str, float | int | None]]:
    """Per-class means over the frames whose truth contains the class.

    Also counts frames where the class is absent from the truth but predicted
    (``false_positive_frames``). NaN HD95 values (undefined) are left out of the mean;
    a mean over no values is None (JSON null).
    """
    summary: dict[str, dict[str, float | int | None]] = {}
    for name in classes:
        rows = per_frame[per_frame["class"] == name]
        present = rows[rows["truth_px"] > 0]
        absent = rows[rows["truth_px"] == 0]

        def mean(column: str) -> float | None:
            values = present[column].dropna()
            return round(float(values.mean()), 4) if len(values) else None

        summary[name] = {"dice": mean("dice"), "iou": mean("iou"), "hd95_px": mean("hd95_px"),
                         "hd95_mm": mean("hd95_mm"), "frames_with_class": int(len(present)),
                         "false_positive_frames": int((absent["predicted_px"] > 0).sum())}
    return summary


def describe(scores: dict) -> str:
    """``Dice 0.951 IoU 0.907 HD95 4.2 px (12 frames)``, with n/a for undefined values."""
    def fmt(value: float | None, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"
    return (f"Dice {fmt(scores['dice'], 3)} IoU {fmt(scores['iou'], 3)} HD95 {fmt(scores['hd95_px'], 1)} px "
            f"({scores['frames_with_class']} frames)")
