"""Paired comparison of two evaluations of the same frames, with patient-bootstrap intervals of the difference.

Two settings (say the diffusion filter on and off) cross-validated on the same split score
the same out-of-fold frames. Their own intervals (``reports/cv.json``) overlap when the
patients are few, even where one setting is better on nearly every patient: each interval
holds the spread between patients, which both settings share. The difference has a much
narrower interval when it is bootstrapped *paired*: each resample draws patients with
replacement (as :mod:`pipeline.evaluation.crossval` does) and scores both settings on the
same drawn patients, so only their disagreement is left in the spread.

For each class the quantities are the evaluate stage's (:func:`pipeline.evaluation.scoring.summarise`):
Dice and IoU (higher is better), HD95 and ASSD (lower; mm when both tables have a spacing
for every measured frame, px otherwise), and the missed and false-positive frames (lower);
then the score, the mean class Dice (higher).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.evaluation.crossval import (DISTANCES, OVERLAP, check_patients, describe_frames, distance_unit,
                                          percentile_interval, pool_folds, resample_patients, values_of_summary)
from pipeline.evaluation.scoring import summarise
from pipeline.files.tables import read_table
from pipeline.layout import PER_FRAME_FILE

COUNTED = ("missed_frames", "false_positive_frames")
REQUIRED_COLUMNS = ("frame_id", "patient", "class", "truth_px", "predicted_px", "intersection_px",
                    "hd95_px", "hd95_mm", "assd_px", "assd_mm")
"""Columns of the evaluate stage's ``per_frame.csv`` that the comparison reads."""


def read_evaluation(path: Path) -> pd.DataFrame:
    """One evaluation's per-frame rows: a ``per_frame.csv``, or a folds folder (``reports/folds``) pooled.

    Args:
        path: the evaluate stage's ``per_frame.csv`` (e.g. ``reports/per_frame.csv`` of the
            test patients), or a folder whose subfolders each hold one (``reports/folds/<k>/``,
            the cross-validation's out-of-fold tables; a patient in two of them is refused).

    Raises:
        ValueError: no such path, a folder without ``<k>/per_frame.csv``, an unreadable table,
            or one without the columns of :data:`REQUIRED_COLUMNS` (each message names the path).
    """
    if path.is_dir():
        files = sorted(path.glob(f"*/{PER_FRAME_FILE.name}"))
        if not files:
            raise ValueError(f"{path}: no <fold>/{PER_FRAME_FILE.name} inside; give a per_frame.csv or a folds "
                             "folder such as reports/folds")
        tables = {index: _read(file) for index, file in enumerate(files)}
        try:
            return pool_folds(tables)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
    if not path.is_file():
        raise ValueError(f"{path}: no such file or folder")
    return _read(path)


def _read(path: Path) -> pd.DataFrame:
    try:
        table = read_table(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable per-frame table ({error})") from None
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"{path}: not the evaluate stage's per_frame.csv (no column {', '.join(missing)})")
    check_patients(table, path)
    return table


def check_paired(baseline: pd.DataFrame, candidate: pd.DataFrame, names: Sequence[str]) -> list[str]:
    """The classes, in the baseline's order, after checking that both tables score the same frames of the same patients.

    Args:
        baseline, candidate: per-frame tables (:func:`read_evaluation`).
        names: how to name the two in errors (their paths).

    Raises:
        ValueError: a table scoring a (frame, class) twice, the tables scoring different
            frames or classes, or a frame under another patient in each.
    """
    for table, name in zip((baseline, candidate), names):
        repeated = table.duplicated(["frame_id", "class"])
        if repeated.any():
            raise ValueError(f"{name}: frame {table.loc[repeated, 'frame_id'].iloc[0]} is scored twice for one class")
    pairs = [set(zip(table["frame_id"], table["class"])) for table in (baseline, candidate)]
    if pairs[0] != pairs[1]:
        missing = sorted({frame for frame, _ in pairs[0] - pairs[1]})
        extra = sorted({frame for frame, _ in pairs[1] - pairs[0]})
        raise ValueError(f"{names[1]} does not score the frames and classes {names[0]} does: "
                         f"{describe_frames(missing, 'missing')}, {describe_frames(extra, 'extra')}; compare "
                         "evaluations of the same split (the same data, split and folds)")
    patients = [table.drop_duplicates("frame_id").set_index("frame_id")["patient"] for table in (baseline, candidate)]
    moved = patients[0].index[patients[0] != patients[1].reindex(patients[0].index)]
    if len(moved):
        raise ValueError(f"{names[1]}: frame {moved[0]} belongs to patient {patients[1][moved[0]]}, "
                         f"in {names[0]} to {patients[0][moved[0]]}; compare evaluations of the same data")
    return list(dict.fromkeys(baseline["class"]))


def paired_values(per_frame: pd.DataFrame, classes: Sequence[str], unit: str) -> dict[str, float]:
    """:func:`~pipeline.evaluation.crossval.summary_values` plus ``<class>/missed_frames`` and
    ``<class>/false_positive_frames`` (frame counts), class by class, then ``score``; NaN when undefined."""
    summary = summarise(per_frame, classes)
    values = values_of_summary(summary, classes, unit)
    ordered: dict[str, float] = {}
    for name in classes:
        ordered |= {f"{name}/{metric}": values[f"{name}/{metric}"] for metric in OVERLAP + DISTANCES}
        ordered |= {f"{name}/{count}": float(summary[name][count]) for count in COUNTED}
    return ordered | {"score": values["score"]}


def higher_is_better(key: str) -> bool:
    """Whether a larger value of ``key`` (``gland/dice``, ``lesion/hd95``, ``score``...) is the better one."""
    return key == "score" or key.split("/")[1] in OVERLAP


def verdict(key: str, interval: Sequence[float] | None) -> str:
    """``better``, ``worse`` (the candidate; the interval of candidate - baseline excludes 0) or ``unclear``."""
    if interval is None or interval[0] <= 0 <= interval[1]:
        return "unclear"
    return "better" if (interval[0] > 0) == higher_is_better(key) else "worse"


def compare(baseline: pd.DataFrame, candidate: pd.DataFrame, classes: Sequence[str], resamples: int,
            confidence: float, seed: int) -> dict[str, Any]:
    """The candidate's change over the baseline on the same frames, with paired patient-bootstrap intervals.

    Args:
        baseline, candidate: per-frame tables of the same frames (:func:`check_paired`).
        classes: the classes, in order.
        resamples: bootstrap resamples of the patients (>= 1).
        confidence: the intervals' coverage, in (0, 1), e.g. 0.95.
        seed: the draws' seed; the same tables and seed give the same report.

    Returns:
        ``patients``, ``frames``, ``distance_unit``, ``bootstrap`` (how), and ``quantities``:
        per key (``<class>/<dice|iou|hd95|assd|missed_frames|false_positive_frames>``, then
        ``score``) the ``baseline`` and ``candidate`` values, their ``difference`` (candidate
        - baseline; None where either is undefined), its ``interval`` ([low, high] over the
        resamples where both are defined, or None), ``undefined_resamples``,
        ``higher_is_better`` and the :func:`verdict`.
    """
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"need resamples >= 1 and 0 < confidence < 1, got {resamples} and {confidence}")
    unit = "mm" if distance_unit(baseline) == distance_unit(candidate) == "mm" else "px"
    patients = sorted(baseline["patient"].unique())
    rows = [table.groupby("patient").indices for table in (baseline, candidate)]
    differences: list[dict[str, float]] = []
    for drawn in resample_patients(len(patients), resamples, seed):
        chosen = [patients[i] for i in drawn]
        pair = [paired_values(table.iloc[np.concatenate([index[p] for p in chosen])], classes, unit)
                for table, index in zip((baseline, candidate), rows)]
        differences.append({key: pair[1][key] - pair[0][key] for key in pair[0]})
    before, after = paired_values(baseline, classes, unit), paired_values(candidate, classes, unit)
    quantities = {}
    for key in before:
        drawn_differences = np.array([draw[key] for draw in differences])
        interval = percentile_interval(drawn_differences, confidence)
        difference = after[key] - before[key]
        quantities[key] = {"baseline": _defined(before[key]), "candidate": _defined(after[key]),
                           "difference": _defined(difference), "interval": interval,
                           "undefined_resamples": int(np.isnan(drawn_differences).sum()),
                           "higher_is_better": higher_is_better(key), "verdict": verdict(key, interval)}
    return {"patients": len(patients), "frames": int(baseline["frame_id"].nunique()), "distance_unit": unit,
            "bootstrap": {"unit": "patient", "paired": True, "resamples": resamples, "seed": seed,
                          "confidence": confidence, "interval": "percentile"},
            "quantities": quantities}


def _defined(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


DIGITS = {"dice": 3, "iou": 3, "hd95": 1, "assd": 2, "missed_frames": 0, "false_positive_frames": 0, "score": 3}


def markdown(report: dict[str, Any], names: Sequence[str]) -> str:
    """The comparison as Markdown: two sentences, then a row per quantity (which way is better, baseline,
    candidate, difference [interval], verdict)."""
    boot, unit = report["bootstrap"], report["distance_unit"]
    lines = [f"Paired comparison on {report['frames']} frames of {report['patients']} patients: baseline {names[0]}, "
             f"candidate {names[1]}.",
             f"Difference = candidate - baseline; {boot['confidence'] * 100:g}% intervals in brackets (paired "
             f"percentile bootstrap over patients, {boot['resamples']} resamples, seed {boot['seed']}); distances "
             f"in {unit}.", "",
             "| quantity | better | baseline | candidate | difference | verdict |", "|---|---|---|---|---|---|"]
    for key, entry in report["quantities"].items():
        metric = key.rpartition("/")[2]
        digits = DIGITS[metric]
        shown = [_number(entry[name], digits) for name in ("baseline", "candidate")]
        difference = _number(entry["difference"], digits, signed=True)
        if entry["interval"] is not None:
            low, high = (_bound(bound, digits) for bound in entry["interval"])
            difference += f" [{low}, {high}]"
        better = "higher" if entry["higher_is_better"] else "lower"
        label = key.replace("/", " ").replace("_", " ") + (f" ({unit})" if metric in DISTANCES else "")
        lines.append(f"| {label} | {better} | {shown[0]} | {shown[1]} | {difference} | {entry['verdict']} |")
    return "\n".join(lines) + "\n"


def _bound(value: float, digits: int) -> str:
    """An interval's end, signed, with more digits (up to 6) where ``digits`` would show a non-zero end as 0."""
    while digits < 6 and value != 0 and round(value, digits) == 0:
        digits += 1
    return _number(value, digits, signed=True)


def _number(value: float | None, digits: int, signed: bool = False) -> str:
    return "n/a" if value is None else f"{value:{'+' if signed else ''}.{digits}f}"
