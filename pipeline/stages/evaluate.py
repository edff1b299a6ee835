"""Stage ``evaluate``: the best checkpoint on the test patients, scored on the original frames.

``python -m pipeline.stages.evaluate`` writes ``reports/metrics.json`` (per-class summary and
the selection score, with ``inference.postprocess`` as ``test`` and without it as
``test_raw``, per plane as ``test_by_plane``, the plane head's accuracy on the frames of a
known plane as ``plane_accuracy`` and ``plane_frames`` (null without a head), and the volume
check as ``volume``),
``reports/volume.csv`` (the volume check per test patient, a Bland-Altman DVC plot), ``reports/per_frame.csv`` (post-processed) and ``reports/per_frame_raw.csv``
(not; both with each frame's ``plane`` from the data and ``predicted_plane`` from the plane
head, empty without one), and comparison pictures of the post-processed masks in ``reports/overlays/`` (DVC
image plots).

``python -m pipeline.stages.evaluate --fold K`` scores cross-validation fold K's checkpoint
on fold K's validation patients (its out-of-fold frames) the same way, into
``reports/folds/K/`` (``metrics.json`` with ``val`` and ``val_raw``, the two per-frame
tables, no pictures); see :func:`evaluation_run` and ``cv/dvc.yaml``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Collection
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn
from tqdm import tqdm

from pipeline.config import Params, load_params
from pipeline.evaluation.pictures import comparison_picture, legend
from pipeline.evaluation.volume import PatientFrames, agreement, bland_altman_table, choose_frames, patient_row
from pipeline.evaluation.scoring import (by_plane, describe, frame_rows, overall_score, plane_accuracy, plane_column,
                                         predicted_plane_column, summarise)
from pipeline.imaging.frames import read_frame
from pipeline.imaging.geometry import FrameGeometry, probabilities_to_original_frame
from pipeline.imaging.masks import read_bitmask, unpack_masks
from pipeline.imaging.png import write_png_atomically
from pipeline.inference.gland_size import GLAND_CLASS
from pipeline.inference.postprocess import postprocess_masks
from pipeline.files.tables import read_table
from pipeline.layout import (CHECKPOINT_FILE, FRAMES_DIR, IMAGES, MASKS, METRICS_FILE, OVERLAYS_DIR, PER_FRAME_FILE,
                             PER_FRAME_RAW_FILE, PROCESSED_DIR, PROCESSED_MANIFEST, SPLIT_FILE, VOLUME_FILE,
                             fold_checkpoint, fold_reports_dir)
from pipeline.files.atomic import staged_folder, write_csv_atomically, write_json_atomically
from pipeline.stages.fold import fold_entry, fold_option
from pipeline.stages.runner import require_file, run_stage
from pipeline.planes import PLANES
from pipeline.training.predict import evaluation_device, predict_outputs
from pipeline.training.checkpoint import load_checkpoint


GLAND = GLAND_CLASS  # the class the volume check measures


@dataclass(frozen=True)
class EvaluationRun:
    """Which checkpoint scores which frames, and where the reports go.

    Attributes:
        subset: ``test`` (the deployed model) or ``val`` (a fold's out-of-fold patients);
            the key of the summary in the metrics file.
        frame_ids: the frames to score, in the split's order.
        patients: their patients.
        checkpoint: the checkpoint to load; its stage is ``train_stage``.
        metrics_file, per_frame_file, per_frame_raw_file: the reports.
        overlays_dir: the comparison pictures' folder, or None for none.
        train_stage: the stage that writes ``checkpoint`` (for the missing-file message).
    """

    subset: str
    frame_ids: list[str]
    patients: list[str]
    checkpoint: Path
    metrics_file: Path
    per_frame_file: Path
    per_frame_raw_file: Path
    overlays_dir: Path | None
    train_stage: str = "train"


def evaluation_run(split: dict[str, Any], fold: int | None) -> EvaluationRun:
    """The deployed model on the test patients (``fold`` None), or fold ``fold``'s model on its validation patients.

    Raises:
        ValueError: no test frames, or see :func:`pipeline.stages.fold.fold_entry`.
    """
    if fold is None:
        if not split["frames"]["test"]:
            raise ValueError(f"{SPLIT_FILE}: no test frames; give split.fractions a test share")
        return EvaluationRun("test", list(split["frames"]["test"]), list(split["patients"]["test"]),
                             CHECKPOINT_FILE, METRICS_FILE, PER_FRAME_FILE, PER_FRAME_RAW_FILE, OVERLAYS_DIR)
    entry, reports = fold_entry(split, fold), fold_reports_dir(fold)
    if not entry["frames"]["val"]:
        raise ValueError(f"{SPLIT_FILE}: fold {fold} has no validation frames; re-run the split stage")
    return EvaluationRun("val", entry["frames"]["val"], entry["patients"]["val"], fold_checkpoint(fold),
                         reports / METRICS_FILE.name, reports / PER_FRAME_FILE.name, reports / PER_FRAME_RAW_FILE.name,
                         None, f"train --fold {fold} (cv/dvc.yaml)")


def spacing_of(row: pd.Series) -> tuple[float, float] | None:
    """(x, y) mm per px from a manifest row, or None when unknown."""
    x, y = row.get("spacing_x_mm", math.nan), row.get("spacing_y_mm", math.nan)
    return None if pd.isna(x) or pd.isna(y) else (float(x), float(y))


def score_frames(model: nn.Module, frame_ids: list[str], table: pd.DataFrame, params: Params,
                 overlays: Path | None = None, keep_glands: Collection[str] = ()
                 ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]], pd.Series | None]:
    """Per-frame score tables of a network on frames, at their original size.

    Each frame's probabilities (averaged over ``inference.flips``) are mapped back onto the
    original frame, thresholded (``inference.threshold``) and post-processed (``inference.postprocess``), then scored
    against the original mask (:func:`pipeline.evaluation.scoring.frame_rows`).

    Args:
        model: the logits network (from the checkpoint), with or without a plane head.
        frame_ids: the frames to score.
        table: the processed manifest indexed by ``frame_id`` (patient, geometry, spacing).
        params: params.yaml (``data.classes``, ``model.mean/std``, ``inference``, ``evaluate.overlays``).
        overlays: a folder for the first ``evaluate.overlays`` comparison pictures, or None.
        keep_glands: frames whose gland masks to return (the volume check's), if the
            classes have a ``gland``.

    Returns:
        The rows of the post-processed masks, those of the raw masks, per kept frame its
        (predicted, truth) (H, W) bool gland masks at the original size, post-processed, and
        per frame id the plane head's most probable plane (None without a head).
    """
    classes, threshold, postprocess = params.data.classes, params.inference.threshold, params.inference.postprocess
    rows, raw_rows, device, glands, planes = [], [], evaluation_device(), {}, {}
    for index, frame_id in enumerate(tqdm(frame_ids, desc="evaluate", unit="frame", disable=None)):
        row = table.loc[frame_id]
        processed = read_frame(PROCESSED_DIR / IMAGES / f"{frame_id}.png").gray
        probabilities, plane = predict_outputs(model, processed[None], params.model.mean, params.model.std,
                                               device=device, flips=params.inference.flips)
        probabilities = probabilities[0]
        if plane is not None:
            planes[frame_id] = PLANES[int(plane[0].argmax())]
        geometry = FrameGeometry.from_dict(row.to_dict())
        raw = probabilities_to_original_frame(probabilities, geometry) > threshold
        predicted = postprocess_masks(raw, classes, postprocess, geometry.input_area_px)
        truth = unpack_masks(read_bitmask(FRAMES_DIR / MASKS / f"{frame_id}.png"), len(classes))
        scored_raw = frame_rows(frame_id, row["patient"], raw, truth, classes, spacing_of(row))
        raw_rows += scored_raw
        rows += frame_rows(frame_id, row["patient"], predicted, truth, classes, spacing_of(row),
                           reuse=list(zip(raw, scored_raw)))
        if frame_id in keep_glands and GLAND in classes:
            glands[frame_id] = (predicted[classes.index(GLAND)], truth[classes.index(GLAND)])
        if overlays is not None and index < params.evaluate.overlays:
            original = read_frame(FRAMES_DIR / IMAGES / f"{frame_id}.png").gray
            write_png_atomically(overlays / f"{frame_id}.png", comparison_picture(original, predicted, truth))
    return pd.DataFrame(rows), pd.DataFrame(raw_rows), glands, pd.Series(planes, dtype=object) if planes else None


def volume_check(frame_ids: list[str], table: pd.DataFrame, glands: dict[str, tuple[np.ndarray, np.ndarray]],
                 chosen: dict[str, tuple[str, str]], not_measurable: int) -> tuple[dict, pd.DataFrame]:
    """The volume check of :mod:`pipeline.evaluation.volume`: its summary and the Bland-Altman rows.

    Args:
        frame_ids: the scored frames (for the spacing of each).
        table: the processed manifest indexed by ``frame_id``.
        glands: frame -> (predicted, truth) gland masks, from :func:`score_frames`.
        chosen: patient -> (transverse, sagittal) frame ids, from :func:`volume_frames`.
        not_measurable: patients without a frame of one of the planes.
    """
    rows = []
    for patient, (across, along) in chosen.items():
        rows.append(patient_row(PatientFrames(
            patient, across, along, glands[across][1], glands[across][0], glands[along][1], glands[along][0],
            spacing_of(table.loc[across]), spacing_of(table.loc[along]))))
    per_patient = pd.DataFrame(rows, columns=["patient", "transverse_frame", "sagittal_frame", "unit", "truth",
                                              "model"])
    return agreement(per_patient, not_measurable).as_dict(), bland_altman_table(per_patient)


def volume_frames(frame_ids: list[str], table: pd.DataFrame) -> tuple[dict[str, tuple[str, str]], int]:
    """Per patient of the frames, its transverse and sagittal frames for the volume, and how many have none.

    Uses the manifest's ``plane`` and ``px_gland`` (truth gland pixels) columns; without
    them (no gland class, or a manifest from before planes) no patient is measurable.
    """
    if "plane" not in table.columns or f"px_{GLAND}" not in table.columns:
        return {}, int(table.loc[frame_ids, "patient"].nunique())
    rows = table.loc[frame_ids]
    chosen, missing = {}, 0
    for patient, frames in rows.groupby("patient", sort=True):
        pair = choose_frames(frames["plane"], frames[f"px_{GLAND}"])
        if pair is None:
            missing += 1
        else:
            chosen[str(patient)] = pair
    return chosen, missing


def metrics_report(run: EvaluationRun, per_frame: pd.DataFrame, per_frame_raw: pd.DataFrame,
                   classes: tuple[str, ...], threshold: float) -> dict[str, Any]:
    """The metrics file's content: ``<subset>`` and ``<subset>_raw`` summaries, scores, counts, threshold,
    and ``<subset>_by_plane`` (post-processed, per plane; ``per_frame`` needs a ``plane`` column)."""
    report = {run.subset: summarise(per_frame, classes), f"{run.subset}_raw": summarise(per_frame_raw, classes),
              "score": overall_score(per_frame, classes), "score_raw": overall_score(per_frame_raw, classes),
              f"{run.subset}_by_plane": by_plane(per_frame, classes),
              "frames": len(run.frame_ids), "patients": len(run.patients), "threshold": threshold}
    return report if run.overlays_dir is None else {**report, "overlays": legend(classes)}


def main() -> None:
    """Scores the test frames (or a fold's validation frames) and writes the reports."""
    fold = fold_option(sys.argv[1:])
    params = load_params()
    require_file(SPLIT_FILE, "split")
    run = evaluation_run(json.loads(SPLIT_FILE.read_text()), fold)
    for path, stage in ((run.checkpoint, run.train_stage), (PROCESSED_DIR / PROCESSED_MANIFEST, "preprocess")):
        require_file(path, stage)
    classes = params.data.classes
    params.inference.check_classes(classes)
    table = read_table(PROCESSED_DIR / PROCESSED_MANIFEST).set_index("frame_id")
    model, _ = load_checkpoint(run.checkpoint)
    chosen, not_measurable = volume_frames(run.frame_ids, table)
    keep = {frame for pair in chosen.values() for frame in pair}
    with staged_folder(run.overlays_dir) if run.overlays_dir is not None else nullcontext() as overlays:
        per_frame, per_frame_raw, glands, planes = score_frames(model, run.frame_ids, table, params, overlays, keep)
    for rows in (per_frame, per_frame_raw):
        rows.insert(2, "plane", plane_column(rows["frame_id"], table))
        rows.insert(3, "predicted_plane", predicted_plane_column(rows["frame_id"], planes))
    write_csv_atomically(run.per_frame_file, per_frame)
    write_csv_atomically(run.per_frame_raw_file, per_frame_raw)
    report = metrics_report(run, per_frame, per_frame_raw, classes, params.inference.threshold)
    report.update(plane_accuracy(planes, plane_column(pd.Series(run.frame_ids, index=run.frame_ids), table)))
    report["volume"], bland_altman = volume_check(run.frame_ids, table, glands, chosen, not_measurable)
    if fold is None:
        write_csv_atomically(VOLUME_FILE, bland_altman)
    write_json_atomically(run.metrics_file, report)
    scope = "" if fold is None else f"fold {fold}: "
    print(f"evaluate: {scope}" + "; ".join(f"{name} {describe(scores)}" for name, scores in report[run.subset].items())
          + f"; score {report['score']:.3f} ({report['score_raw']:.3f} without post-processing)"
          + ("" if report["plane_accuracy"] is None else
             f"; plane accuracy {report['plane_accuracy']:.3f} on {report['plane_frames']} frames")
          + f" -> {run.metrics_file}")


if __name__ == "__main__":
    run_stage(main)
