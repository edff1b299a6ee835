"""Stage ``evaluate``: the best checkpoint on the test patients, scored on the original frames.

``python -m pipeline.stages.evaluate`` writes ``reports/metrics.json`` (per-class summary and
the selection score, with ``inference.postprocess`` as ``test`` and without it as
``test_raw``), ``reports/per_frame.csv`` (post-processed) and ``reports/per_frame_raw.csv``
(not), and comparison pictures of the post-processed masks in ``reports/overlays/`` (DVC
image plots).
"""

from __future__ import annotations

import json
import math

import pandas as pd
from tqdm import tqdm

from pipeline.config import load_params
from pipeline.evaluation.pictures import comparison_picture, legend
from pipeline.evaluation.scoring import describe, frame_rows, overall_score, summarise
from pipeline.imaging.frames import read_frame
from pipeline.imaging.geometry import FrameGeometry, probabilities_to_original_frame
from pipeline.imaging.masks import read_bitmask, unpack_masks
from pipeline.imaging.png import write_png_atomically
from pipeline.inference.postprocess import postprocess_masks
from pipeline.files.tables import read_table
from pipeline.layout import (CHECKPOINT_FILE, FRAMES_DIR, IMAGES, MASKS, METRICS_FILE, OVERLAYS_DIR, PER_FRAME_FILE,
                             PER_FRAME_RAW_FILE, PROCESSED_DIR, PROCESSED_MANIFEST, SPLIT_FILE)
from pipeline.files.atomic import staged_folder, write_csv_atomically, write_json_atomically
from pipeline.stages.runner import require_file, run_stage
from pipeline.training.predict import predict_probabilities
from pipeline.training.checkpoint import load_checkpoint


def spacing_of(row: pd.Series) -> tuple[float, float] | None:
    """(x, y) mm per px from a manifest row, or None when unknown."""
    x, y = row.get("spacing_x_mm", math.nan), row.get("spacing_y_mm", math.nan)
    return None if pd.isna(x) or pd.isna(y) else (float(x), float(y))


def main() -> None:
    """Scores the test frames and writes the reports."""
    params = load_params()
    for path, stage in ((SPLIT_FILE, "split"), (CHECKPOINT_FILE, "train"), (PROCESSED_DIR / PROCESSED_MANIFEST, "preprocess")):
        require_file(path, stage)
    classes = params.data.classes
    params.inference.check_classes(classes)
    split = json.loads(SPLIT_FILE.read_text())
    table = read_table(PROCESSED_DIR / PROCESSED_MANIFEST).set_index("frame_id")
    test_ids = split["frames"]["test"]
    if not test_ids:
        raise ValueError(f"{SPLIT_FILE}: no test frames; give split.fractions a test share")
    model, _ = load_checkpoint(CHECKPOINT_FILE)
    threshold, postprocess = params.inference.threshold, params.inference.postprocess
    rows, raw_rows = [], []
    with staged_folder(OVERLAYS_DIR) as overlays:
        for index, frame_id in enumerate(tqdm(test_ids, desc="evaluate", unit="frame", disable=None)):
            row = table.loc[frame_id]
            processed = read_frame(PROCESSED_DIR / IMAGES / f"{frame_id}.png").gray
            probabilities = predict_probabilities(model, processed[None], params.model.mean, params.model.std)[0]
            raw = probabilities_to_original_frame(probabilities, FrameGeometry.from_dict(row.to_dict())) > threshold
            predicted = postprocess_masks(raw, classes, postprocess)
            truth = unpack_masks(read_bitmask(FRAMES_DIR / MASKS / f"{frame_id}.png"), len(classes))
            scored_raw = frame_rows(frame_id, row["patient"], raw, truth, classes, spacing_of(row))
            raw_rows += scored_raw
            rows += frame_rows(frame_id, row["patient"], predicted, truth, classes, spacing_of(row),
                               reuse=list(zip(raw, scored_raw)))
            if index < params.evaluate.overlays:
                original = read_frame(FRAMES_DIR / IMAGES / f"{frame_id}.png").gray
                write_png_atomically(overlays / f"{frame_id}.png", comparison_picture(original, predicted, truth))
    per_frame, per_frame_raw = pd.DataFrame(rows), pd.DataFrame(raw_rows)
    write_csv_atomically(PER_FRAME_FILE, per_frame)
    write_csv_atomically(PER_FRAME_RAW_FILE, per_frame_raw)
    summary = summarise(per_frame, classes)
    score, score_raw = overall_score(per_frame, classes), overall_score(per_frame_raw, classes)
    write_json_atomically(METRICS_FILE, {
        "test": summary, "test_raw": summarise(per_frame_raw, classes), "score": score, "score_raw": score_raw,
        "frames": len(test_ids), "patients": len(split["patients"]["test"]), "threshold": threshold,
        "overlays": legend(classes),
    })
    print("evaluate: " + "; ".join(f"{name} {describe(scores)}" for name, scores in summary.items())
          + f"; score {score:.3f} ({score_raw:.3f} without post-processing) -> {METRICS_FILE}")


if __name__ == "__main__":
    run_stage(main)
