"""Scoring predictions on the original frames: one row per frame and class, and the per-class summary.

The summary's Dice and IoU are :func:`pipeline.evaluation.summary.class_summary` of the
rows' pixel counts: the definition training selects its checkpoint on. HD95 and ASSD are
averaged over the frames where truth and prediction both hold the class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.evaluation.metrics import score_masks, surface_distances
from pipeline.evaluation.summary import ClassSummary, class_summary, selection_score
from pipeline.planes import PLANES

DISTANCES = ("hd95_px", "hd95_mm", "assd_px", "assd_mm")


def class_row(frame_id: str, patient: str, name: str, predicted: np.ndarray, truth: np.ndarray,
              spacing_mm: tuple[float, float] | None) -> dict:
    """The score row of one frame and class.

    Args:
        frame_id, patient: the frame's identity, copied into the row.
        name: the class name.
        predicted, truth: (H, W) bool masks of the class at the original frame size.
        spacing_mm: (x, y) mm per px, or None (then ``hd95_mm`` and ``assd_mm`` are NaN).

    Returns:
        ``frame_id, patient, class, dice, iou`` (NaN when both masks are empty),
        ``hd95_px, hd95_mm, assd_px, assd_mm`` (NaN unless both are non-empty),
        ``truth_px, predicted_px, intersection_px``.
    """
    in_px = score_masks(predicted, truth)
    hd95_mm = assd_mm = math.nan
    if spacing_mm is not None and not math.isnan(in_px.hd95):
        hd95_mm, assd_mm = surface_distances(predicted.astype(bool), truth.astype(bool), spacing_mm)
    return {"frame_id": frame_id, "patient": patient, "class": name, "dice": in_px.dice, "iou": in_px.iou,
            "hd95_px": in_px.hd95, "hd95_mm": hd95_mm, "assd_px": in_px.assd, "assd_mm": assd_mm,
            "truth_px": in_px.truth_pixels, "predicted_px": in_px.predicted_pixels,
            "intersection_px": in_px.intersection_pixels}


def frame_rows(frame_id: str, patient: str, predicted: np.ndarray, truth: np.ndarray,
               classes: Sequence[str], spacing_mm: tuple[float, float] | None,
               reuse: Sequence[tuple[np.ndarray, dict]] | None = None) -> list[dict]:
    """Per-class score rows of one frame (see :func:`class_row`).

    Args:
        predicted, truth: (C, H, W) bool masks at the original frame size.
        classes: the C class names.
        spacing_mm: (x, y) mm per px, or None.
        reuse: per class, an already scored (predicted mask, row) of the same frame and
            truth; a class whose mask equals it takes a copy of that row instead of being
            scored again (the surface distances are the slow part).
    """
    rows = []
    for channel, name in enumerate(classes):
        if reuse is not None and np.array_equal(reuse[channel][0], predicted[channel]):
            rows.append(dict(reuse[channel][1]))
        else:
            rows.append(class_row(frame_id, patient, name, predicted[channel], truth[channel], spacing_mm))
    return rows


def class_summaries(per_frame: pd.DataFrame, classes: Sequence[str]) -> dict[str, ClassSummary]:
    """Per class, :func:`class_summary` of the rows' ``truth_px``, ``predicted_px`` and ``intersection_px``."""
    summaries = {}
    for name in classes:
        rows = per_frame[per_frame["class"] == name]
        summaries[name] = class_summary(rows["truth_px"].to_numpy(), rows["predicted_px"].to_numpy(),
                                        rows["intersection_px"].to_numpy())
    return summaries


def summarise(per_frame: pd.DataFrame, classes: Sequence[str]) -> dict[str, dict[str, float | int | None]]:
    """Per-class summary of a per-frame table (``reports/metrics.json``'s ``test``).

    Args:
        per_frame: rows of :func:`frame_rows`.
        classes: the classes to summarise, in order.

    Returns:
        Per class: ``dice``, ``iou`` (:class:`~pipeline.evaluation.summary.ClassSummary`),
        ``hd95_px``, ``hd95_mm``, ``assd_px``, ``assd_mm`` (means over the frames where
        truth and prediction both hold the class, mm over those with a known spacing; None
        over no frame), then the frame counts ``frames_with_class``, ``missed_frames``,
        ``false_positive_frames`` and ``frames_scored``.
    """
    summary: dict[str, dict[str, float | int | None]] = {}
    for name, scores in class_summaries(per_frame, classes).items():
        rows = per_frame[per_frame["class"] == name]
        counts = scores.as_dict()
        distances = {column: (float(rows[column].dropna().mean()) if rows[column].notna().any() else None)
                     for column in DISTANCES}
        summary[name] = {"dice": counts.pop("dice"), "iou": counts.pop("iou"), **distances, **counts}
    return summary


def overall_score(per_frame: pd.DataFrame, classes: Sequence[str]) -> float:
    """The selection score of a per-frame table: the mean over classes of the class Dice."""
    return selection_score(class_summaries(per_frame, classes).values())


def describe(scores: dict) -> str:
    """One class of :func:`summarise` in a line, undefined values as n/a:
    ``Dice 0.951 IoU 0.907 HD95 4.2 px ASSD 1.1 px (12 frames with it, 1 missed, 0 false positive; 12 scored)``.
    """
    def fmt(key: str, digits: int) -> str:
        return "n/a" if scores[key] is None else f"{scores[key]:.{digits}f}"
    return (f"Dice {fmt('dice', 3)} IoU {fmt('iou', 3)} HD95 {fmt('hd95_px', 1)} px ASSD {fmt('assd_px', 1)} px "
            f"({scores['frames_with_class']} frames with it, {scores['missed_frames']} missed, "
            f"{scores['false_positive_frames']} false positive; {scores['frames_scored']} scored)")


UNKNOWN_PLANE = "unknown"


def plane_column(frame_ids: pd.Series, table: pd.DataFrame) -> pd.Series:
    """Each frame's plane from the processed manifest: ``transverse``, ``sagittal``, or ``unknown``
    (the data did not say, or a manifest made before planes existed)."""
    planes = table["plane"] if "plane" in table.columns else pd.Series(dtype=object)
    return frame_ids.map(planes).astype(object).fillna(UNKNOWN_PLANE).replace("", UNKNOWN_PLANE)


def predicted_plane_column(frame_ids: pd.Series, predicted: pd.Series | None) -> pd.Series:
    """Each frame's plane as the model's plane head names it (a ``PLANES`` name), or ``""``
    for every frame of a model without one.

    Args:
        frame_ids: the rows' frame ids.
        predicted: per frame id, the head's most probable plane, or None without a head.
    """
    if predicted is None:
        return pd.Series("", index=frame_ids.index, dtype=object)
    return frame_ids.map(predicted).astype(object).fillna("")


def frame_plane_accuracy(per_frame: pd.DataFrame) -> dict[str, float | int | None]:
    """:func:`plane_accuracy` from per-frame rows with ``frame_id``, ``plane`` and ``predicted_plane``
    columns (one or more rows per frame); None values without a predicted plane anywhere."""
    frames = per_frame.drop_duplicates("frame_id").set_index("frame_id")
    predicted = frames["predicted_plane"] if "predicted_plane" in frames.columns else pd.Series(dtype=object)
    if not predicted.isin(PLANES).any():
        return plane_accuracy(None, frames["plane"])
    return plane_accuracy(predicted, frames["plane"])


def by_plane(per_frame: pd.DataFrame, classes: Sequence[str]) -> dict[str, Any]:
    """Per plane present (``transverse``, ``sagittal``, ``unknown``): frames, class summaries and score."""
    report = {}
    for plane in (*PLANES, UNKNOWN_PLANE):
        rows = per_frame[per_frame["plane"] == plane]
        if len(rows):
            report[plane] = {"frames": int(rows["frame_id"].nunique()), **summarise(rows, classes),
                             "score": overall_score(rows, classes)}
    return report


def plane_accuracy(predicted: pd.Series | None, truth: pd.Series) -> dict[str, float | int | None]:
    """The plane output's accuracy on the frames of a known plane (the metrics file's keys).

    Args:
        predicted: per frame id, the model's most probable plane (a ``PLANES`` name), or None
            for a model without a plane output.
        truth: per frame id, the data's plane (:func:`plane_column`: a ``PLANES`` name or ``unknown``).

    Returns:
        ``plane_accuracy``: the share in [0, 1] of the known frames whose plane the model
        names (None without a plane output or known frames), and ``plane_frames``: those
        frames (None without a plane output).
    """
    if predicted is None:
        return {"plane_accuracy": None, "plane_frames": None}
    known = truth[truth.isin(PLANES)]
    right = int((predicted.reindex(known.index) == known).sum())
    return {"plane_accuracy": right / len(known) if len(known) else None, "plane_frames": len(known)}
