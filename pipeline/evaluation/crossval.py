"""Cross-validation report: pooled out-of-fold scores, per-fold values and patient-bootstrap intervals.

Each fold's model is scored by the evaluate stage on its validation patients (its
out-of-fold frames, ``reports/folds/<k>/per_frame.csv``). The folds' validation patients
partition the train+val patients, so their tables together score every one of them exactly
once, each by a model that never trained on it. Per class this module reports:

- **pooled**: :func:`pipeline.evaluation.scoring.summarise` of all out-of-fold rows, the
  evaluate stage's own summary (Dice and IoU over the frames where truth or prediction holds
  the class; HD95 and ASSD where both do; missed and false-positive frames counted apart);
- **per fold**: the same summary of each fold's rows;
- **interval**: a percentile bootstrap over *patients*: each resample draws as many patients
  as there are, with replacement, takes all the rows of every drawn patient (a patient drawn
  twice counts twice) and recomputes the pooled summary with ``summarise``. The interval
  holds the central ``confidence`` share of the resampled values. A patient's frames move
  together, as they are not independent. Distances that a resample leaves undefined (no
  frame where truth and prediction both hold the class) are left out of that metric's
  interval and counted.

Surface distances are in mm when every frame that has one has a known pixel spacing, in
px otherwise (:func:`distance_unit`). The selection score (mean class Dice) gets the same
treatment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.evaluation.scoring import by_plane, frame_plane_accuracy, summarise

OVERLAP = ("dice", "iou")
DISTANCES = ("hd95", "assd")
COUNTS = ("frames_with_class", "missed_frames", "false_positive_frames", "frames_scored")


def pool_folds(per_fold: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """The folds' per-frame tables as one, with a ``fold`` column, in fold order.

    Raises:
        ValueError: no fold, or a patient scored in two folds (its frames would be in-fold somewhere).
    """
    if not per_fold:
        raise ValueError("no fold to pool")
    patients = {fold: set(table["patient"]) for fold, table in per_fold.items()}
    shared = sorted({p for a in patients for b in patients if a < b for p in patients[a] & patients[b]})
    if shared:
        raise ValueError(f"patient(s) {', '.join(shared)} scored in more than one fold; the folds' validation "
                         "patients must not overlap")
    return pd.concat([table.assign(fold=fold) for fold, table in sorted(per_fold.items())], ignore_index=True)


def check_out_of_fold(per_fold: Mapping[int, pd.DataFrame], split_folds: Sequence[Mapping[str, Sequence[str]]],
                      classes: Sequence[str]) -> None:
    """Checks that the tables are every fold's, on exactly its validation frames, with every class.

    Args:
        per_fold: fold -> its per-frame table (``frame_id``, ``class``).
        split_folds: the split file's ``fold_frames`` (per fold ``train`` and ``val`` frame ids).
        classes: the classes each frame must have a row for.

    Raises:
        ValueError: a fold of the split has no table (or a table no fold), or a table's
            frames or classes differ from its fold's validation frames and ``classes``.
    """
    expected = list(range(len(split_folds)))
    if sorted(per_fold) != expected:
        raise ValueError(f"cross-validation needs every fold of the split, {expected}; got {sorted(per_fold)} "
                         f"(set cv.folds to {expected})")
    for fold, table in per_fold.items():
        pairs = set(zip(table["frame_id"].astype(str), table["class"]))
        frames = list(split_folds[fold]["val"])
        wanted = {(frame, name) for frame in frames for name in classes}
        if pairs != wanted or len(table) != len(wanted):
            missing = sorted({frame for frame, _ in wanted - pairs})
            unexpected = sorted({frame for frame, _ in pairs - wanted})
            raise ValueError(f"fold {fold}: its table does not score each of its {len(frames)} validation "
                             f"frame(s) once per class of data.classes: {describe_frames(missing, 'missing')}, "
                             f"{describe_frames(unexpected, 'unexpected')}, {len(table) - len(pairs)} row(s) repeated; "
                             "re-run the fold's evaluation")


def check_patients(per_frame: pd.DataFrame, source: object) -> None:
    """Checks that every row names its patient, the unit each bootstrap resamples.

    Args:
        per_frame: a per-frame table (``frame_id``, ``patient``).
        source: where it was read from (a path), the start of the error message.

    Raises:
        ValueError: rows with an empty ``patient`` cell; the message names ``source`` and their
            frames. The evaluate stage never writes one (an unmatched name is its own patient); a
            hand-edited table can, and the bootstrap would drop those rows without a word.
    """
    empty = per_frame["patient"].isna() | (per_frame["patient"].astype(str).str.strip() == "")
    if empty.any():
        frames = list(dict.fromkeys(per_frame.loc[empty, "frame_id"].astype(str)))
        raise ValueError(f"{source}: {int(empty.sum())} row(s) without a patient, "
                         f"{describe_frames(frames, 'frame(s)')}; every row needs its patient: the intervals "
                         "resample patients")


def describe_frames(ids: Sequence[str], what: str) -> str:
    """``0 missing``, ``1 missing (0071)``, ``4 missing (0071, 0072, 0081, ...)``: how many frames, the first ones."""
    return f"{len(ids)} {what}" + (f" ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})" if ids else "")


def distance_unit(per_frame: pd.DataFrame) -> str:
    """``mm`` when every row with a surface distance in px has it in mm too (and one does), else ``px``."""
    has_px, has_mm = per_frame["hd95_px"].notna(), per_frame["hd95_mm"].notna()
    return "mm" if has_mm.any() and bool((has_mm | ~has_px).all()) else "px"


def summary_values(per_frame: pd.DataFrame, classes: Sequence[str], unit: str) -> dict[str, float]:
    """The quantities with intervals, from ``summarise``: ``<class>/<dice|iou|hd95|assd>`` and ``score``; NaN when undefined."""
    return values_of_summary(summarise(per_frame, classes), classes, unit)


def values_of_summary(summary: Mapping[str, Mapping[str, Any]], classes: Sequence[str],
                      unit: str) -> dict[str, float]:
    """:func:`summary_values` of a ``summarise`` result already at hand."""
    values: dict[str, float] = {}
    for name in classes:
        for metric in OVERLAP + DISTANCES:
            value = summary[name][metric if metric in OVERLAP else f"{metric}_{unit}"]
            values[f"{name}/{metric}"] = np.nan if value is None else float(value)
    values["score"] = float(np.mean([summary[name]["dice"] for name in classes]))
    return values


def resample_patients(n_patients: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n_patients) int: per resample, ``n_patients`` patient positions drawn with replacement (seeded)."""
    return np.random.default_rng(seed).integers(0, n_patients, size=(resamples, n_patients))


def bootstrap_values(per_frame: pd.DataFrame, classes: Sequence[str], unit: str, resamples: int,
                     seed: int) -> dict[str, np.ndarray]:
    """Per quantity of :func:`summary_values`, its (resamples,) values over patient resamples (NaN: undefined).

    Args:
        per_frame: the pooled out-of-fold rows (``patient`` and the evaluate stage's columns).
        classes: the classes to summarise.
        unit: ``mm`` or ``px`` for the distances.
        resamples: number of resamples.
        seed: the generator's seed; the same seed and table give the same values.
    """
    patients = sorted(per_frame["patient"].unique())
    positions = per_frame.groupby("patient").indices  # patient -> row positions
    rows = [positions[patient] for patient in patients]
    draws = [summary_values(per_frame.iloc[np.concatenate([rows[i] for i in drawn])], classes, unit)
             for drawn in resample_patients(len(patients), resamples, seed)]
    return {key: np.array([draw[key] for draw in draws]) for key in draws[0]}


def percentile_interval(values: np.ndarray, confidence: float) -> list[float] | None:
    """The central ``confidence`` share of the defined (non-NaN) values as [low, high], or None if none is defined."""
    defined = values[~np.isnan(values)]
    if not defined.size:
        return None
    tail = (1 - confidence) / 2
    low, high = np.quantile(defined, [tail, 1 - tail])
    return [float(low), float(high)]


def _undefined(value: float) -> float | None:
    return None if np.isnan(value) else value


def cv_report(per_fold: Mapping[int, pd.DataFrame], classes: Sequence[str], resamples: int, confidence: float,
              seed: int) -> dict[str, Any]:
    """The cross-validation report (``reports/cv.json``) of the folds' out-of-fold per-frame tables.

    Args:
        per_fold: fold -> its ``per_frame.csv`` rows (post-processed masks, as shipped).
        classes: the classes, in order.
        resamples: bootstrap resamples of the patients.
        confidence: the intervals' coverage, e.g. 0.95.
        seed: the bootstrap's seed.

    Returns:
        ``folds``, ``patients``, ``frames``, ``fold_sizes`` (per fold its patients and
        frames), ``distance_unit``, ``bootstrap`` (how the
        intervals were made), per class in ``classes``: ``pooled`` (the evaluate stage's
        summary of all rows), ``interval`` (``dice``, ``iou``, ``hd95``, ``assd`` as
        [low, high] or None; distances in ``distance_unit``), ``undefined_resamples`` (per
        metric, resamples where it is undefined), ``per_fold`` (per metric and count, one
        value per fold); ``score`` (``pooled``, ``interval``, ``per_fold``); and, when the
        tables have a ``plane`` column, ``by_plane`` (:func:`plane_report`) and, when they
        also name the plane head's ``predicted_plane``, ``plane_accuracy`` (``pooled`` over the
        frames of a known plane, their number as ``frames``, and ``per_fold``).

    Raises:
        ValueError: see :func:`pool_folds`.
    """
    pooled = pool_folds(per_fold)
    unit = distance_unit(pooled)
    point = summarise(pooled, classes)
    drawn = bootstrap_values(pooled, classes, unit, resamples, seed)
    folds = sorted(per_fold)
    fold_summaries = [summarise(per_fold[fold], classes) for fold in folds]
    fold_values = [summary_values(per_fold[fold], classes, unit) for fold in folds]
    report: dict[str, Any] = {
        "folds": folds, "patients": int(pooled["patient"].nunique()), "frames": int(pooled["frame_id"].nunique()),
        "fold_sizes": [{"fold": fold, "patients": int(per_fold[fold]["patient"].nunique()),
                        "frames": int(per_fold[fold]["frame_id"].nunique())} for fold in folds],
        "distance_unit": unit,
        "bootstrap": {"unit": "patient", "resamples": resamples, "seed": seed, "confidence": confidence,
                      "interval": "percentile"},
        "classes": {},
    }
    for name in classes:
        metrics = [f"{name}/{metric}" for metric in OVERLAP + DISTANCES]
        report["classes"][name] = {
            "pooled": point[name],
            "interval": {key.split("/")[1]: percentile_interval(drawn[key], confidence) for key in metrics},
            "undefined_resamples": {key.split("/")[1]: int(np.isnan(drawn[key]).sum()) for key in metrics},
            "per_fold": {**{key.split("/")[1]: [_undefined(values[key]) for values in fold_values] for key in metrics},
                         **{count: [summary[name][count] for summary in fold_summaries] for count in COUNTS}},
        }
    report["score"] = {"pooled": float(np.mean([point[name]["dice"] for name in classes])),
                       "interval": percentile_interval(drawn["score"], confidence),
                       "per_fold": [values["score"] for values in fold_values]}
    if "plane" in pooled.columns:
        report["by_plane"] = plane_report(pooled, classes, unit, resamples, confidence, seed)
        pooled_planes = frame_plane_accuracy(pooled)
        if pooled_planes["plane_accuracy"] is not None:
            report["plane_accuracy"] = {"pooled": pooled_planes["plane_accuracy"], "frames": pooled_planes["plane_frames"],
                                        "per_fold": [frame_plane_accuracy(per_fold[fold])["plane_accuracy"]
                                                     for fold in folds]}
    return report


def plane_report(pooled: pd.DataFrame, classes: Sequence[str], unit: str, resamples: int, confidence: float,
                 seed: int) -> dict[str, Any]:
    """Per plane present: the pooled summary (``by_plane``'s) with each class's Dice interval.

    The interval is the same patient bootstrap as the overall one, over the patients with
    frames of that plane.
    """
    report = by_plane(pooled, classes)
    for plane, summary in report.items():
        drawn = bootstrap_values(pooled[pooled["plane"] == plane], classes, unit, resamples, seed)
        for name in classes:
            summary[name] = {**summary[name], "dice_interval": percentile_interval(drawn[f"{name}/dice"], confidence)}
    return report
