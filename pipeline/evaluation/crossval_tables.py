"""The cross-validation report as people read it: a Markdown table (``reports/cv.md``) and plot rows.

Both take the dictionary of :func:`pipeline.evaluation.crossval.cv_report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

DIGITS = {"dice": 3, "iou": 3, "hd95": 1, "assd": 2}


def _number(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def with_interval(value: float | None, interval: Sequence[float] | None, digits: int) -> str:
    """``0.951 [0.930, 0.965]``, or the value alone when there is no interval; n/a for undefined."""
    shown = _number(value, digits)
    return shown if value is None or interval is None else f"{shown} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: a sentence, the pooled table with intervals, the per-fold table.

    Pooled table: one row per class (Dice, IoU, HD95, ASSD with their intervals in
    brackets; frames with the class, missed, false-positive) and one for the score. Per-fold
    table: one row per fold (patients, frames, each class's Dice, the score). Per-plane table,
    when the report has ``by_plane``: one row per plane (frames, each class's Dice with its
    interval, the score), then the plane head's pooled and per-fold accuracy when it has ``plane_accuracy``.
    """
    unit, boot, classes = report["distance_unit"], report["bootstrap"], report["classes"]
    percent = f"{boot['confidence'] * 100:g}%"
    lines = [f"Cross-validation: {len(report['folds'])} folds over {report['patients']} train+val patients "
             f"({report['frames']} frames), each frame scored by the fold model that did not train on its patient.",
             f"Pooled out-of-fold values, {percent} intervals in brackets (percentile bootstrap over patients, "
             f"{boot['resamples']} resamples, seed {boot['seed']}); distances in {unit}.", "",
             f"| class | Dice | IoU | HD95 ({unit}) | ASSD ({unit}) | frames with it | missed | false positive |",
             "|---|---|---|---|---|---|---|---|"]
    for name, entry in classes.items():
        pooled, interval = entry["pooled"], entry["interval"]
        cells = [with_interval(pooled[metric if metric in ("dice", "iou") else f"{metric}_{unit}"],
                               interval[metric], digits) for metric, digits in DIGITS.items()]
        counts = [str(pooled[key]) for key in ("frames_with_class", "missed_frames", "false_positive_frames")]
        lines.append(f"| {name} | " + " | ".join(cells + counts) + " |")
    score = report["score"]
    lines += [f"| score (mean Dice) | {with_interval(score['pooled'], score['interval'], 3)} |  |  |  |  |  |  |", "",
              "| fold | patients | frames | " + " | ".join(f"{name} Dice" for name in classes) + " | score |",
              "|---" * (4 + len(classes)) + "|"]
    for index, size in enumerate(report["fold_sizes"]):
        dice = [_number(entry["per_fold"]["dice"][index], 3) for entry in classes.values()]
        lines.append(f"| {size['fold']} | {size['patients']} | {size['frames']} | " + " | ".join(dice)
                     + f" | {score['per_fold'][index]:.3f} |")
    return "\n".join(lines + _plane_lines(report)) + "\n"


def _plane_lines(report: dict[str, Any]) -> list[str]:
    """The per-plane table (frames, each class's pooled Dice with its interval, the score), or none without planes."""
    planes = report.get("by_plane")
    if not planes:
        return []
    classes = list(report["classes"])
    lines = ["", "| plane | frames | " + " | ".join(f"{name} Dice" for name in classes) + " | score |",
             "|---" * (3 + len(classes)) + "|"]
    for plane, entry in planes.items():
        dice = [with_interval(entry[name]["dice"], entry[name]["dice_interval"], 3) for name in classes]
        lines.append(f"| {plane} | {entry['frames']} | " + " | ".join(dice) + f" | {entry['score']:.3f} |")
    accuracy = report.get("plane_accuracy")
    if accuracy is not None:
        per_fold = ", ".join(_number(value, 2) for value in accuracy["per_fold"])
        lines += ["", f"Plane head: accuracy {accuracy['pooled']:.3f} on the {accuracy['frames']} frames of a known "
                      f"plane (per fold: {per_fold})."]
    return lines


def plot_table(report: dict[str, Any]) -> pd.DataFrame:
    """Rows of the Dice bar chart (``reports/cv_dice.csv``): each fold, the pooled value and the interval's ends.

    Columns ``run`` (``fold 0 (3 patients)``, ``fold 1 (1 patient)``, ..., ``pooled``, ``pooled 95% low``,
    ``pooled 95% high``) and one per class (its Dice; empty when undefined).
    """
    classes, percent = report["classes"], f"{report['bootstrap']['confidence'] * 100:g}%"
    rows = [{"run": f"fold {size['fold']} ({size['patients']} patient{'s' * (size['patients'] != 1)})",
             **{name: entry["per_fold"]["dice"][index] for name, entry in classes.items()}}
            for index, size in enumerate(report["fold_sizes"])]
    rows.append({"run": "pooled", **{name: entry["pooled"]["dice"] for name, entry in classes.items()}})
    for end, label in ((0, "low"), (1, "high")):
        rows.append({"run": f"pooled {percent} {label}",
                     **{name: (entry["interval"]["dice"] or [None, None])[end] for name, entry in classes.items()}})
    return pd.DataFrame(rows)
