"""Where each stage reads and writes, relative to the project root (mirrors dvc.yaml).

Stage outputs live outside ``data/`` (DVC refuses overlapping outputs).

- pull -> ``artifacts/frames/``: ``images/<frame_id>.png`` (original-size uint8 grey),
  ``masks/<frame_id>.png`` (original-size uint8 bitmask, bit c = class c, see
  ``pipeline.imaging.masks``), ``manifest.csv`` (one row per frame), ``source.json`` (the export's own
  description, e.g. that it is synthetic); ``reports/qc.json``, the annotation QC report
  (see ``pipeline.ingest.qc.write_report``).
- preprocess -> ``artifacts/processed/``: ``images/<frame_id>.png`` (size x size uint8,
  filtered), ``masks/<frame_id>.png`` (size x size bitmask), ``frames.csv`` (manifest
  columns + geometry columns of ``FrameGeometry.to_dict``); ``reports/preprocess/`` pairs.
- split -> ``artifacts/split.json``: patients and frames per subset and per fold (the
  structure is in ``pipeline.splitting``).
- train -> ``models/checkpoint.pt`` (see ``pipeline.training.checkpoint``), ``dvclive/``.
- evaluate -> ``reports/metrics.json``, ``reports/per_frame.csv``, ``reports/overlays/``.
- export -> ``models/model.onnx``; ``models/int8/model.int8.onnx`` when the INT8 model passes its gate (the
  folder is the output: DVC cannot declare a file that may not exist), ``reports/int8.json`` (the gate's figures).
- ood -> ``reports/ood.json``, ``reports/ood_dice.csv``, ``reports/ood_per_frame.csv`` (see
  ``pipeline.evaluation.ood``).

Cross-validation (``cv/dvc.yaml``, run on request), fold k as a plain number:

- train --fold k -> ``models/folds/<k>/checkpoint.pt``, ``dvclive/folds/<k>/``.
- evaluate --fold k -> ``reports/folds/<k>/metrics.json``, ``per_frame.csv``, ``per_frame_raw.csv``
  (fold k's validation patients: its out-of-fold frames).
- cv -> ``reports/cv.json``, ``reports/cv.md``, ``reports/cv_dice.csv`` (see ``pipeline.evaluation.crossval``).
"""

from __future__ import annotations

from pathlib import Path

FRAMES_DIR = Path("artifacts/frames")
PROCESSED_DIR = Path("artifacts/processed")
SPLIT_FILE = Path("artifacts/split.json")
CHECKPOINT_FILE = Path("models/checkpoint.pt")
DVCLIVE_DIR = Path("dvclive")
REPORTS_DIR = Path("reports")
QC_REPORT = REPORTS_DIR / "qc.json"
METRICS_FILE = REPORTS_DIR / "metrics.json"
PER_FRAME_FILE = REPORTS_DIR / "per_frame.csv"          # scores of the post-processed masks (as shipped)
PER_FRAME_RAW_FILE = REPORTS_DIR / "per_frame_raw.csv"  # the same without post-processing
VOLUME_FILE = REPORTS_DIR / "volume.csv"  # the volume check, per test patient (Bland-Altman plot)
OVERLAYS_DIR = REPORTS_DIR / "overlays"
PREPROCESS_PLOTS_DIR = REPORTS_DIR / "preprocess"
MODEL_FILE = Path("models/model.onnx")
INT8_DIR = MODEL_FILE.parent / "int8"
INT8_FILE = INT8_DIR / "model.int8.onnx"    # pipeline.inference.runtime.int8_candidates finds it there
INT8_REPORT = REPORTS_DIR / "int8.json"
OOD_FILE = REPORTS_DIR / "ood.json"            # the model on scanner variants training never saw
OOD_PLOT_FILE = REPORTS_DIR / "ood_dice.csv"  # its Dice per variant and class (a DVC bar chart)
OOD_PER_FRAME_FILE = REPORTS_DIR / "ood_per_frame.csv"  # its rows per variant, frame and class
FOLDS = "folds"
CV_FILE = REPORTS_DIR / "cv.json"          # pooled out-of-fold scores, per-fold values, bootstrap intervals
CV_TABLE_FILE = REPORTS_DIR / "cv.md"      # the same as a Markdown table
CV_PLOT_FILE = REPORTS_DIR / "cv_dice.csv"  # Dice per fold and pooled, with the interval (a DVC bar chart)

IMAGES = "images"
MASKS = "masks"
MANIFEST = "manifest.csv"
SOURCE_INFO = "source.json"
PROCESSED_MANIFEST = "frames.csv"
REGION_COLUMNS = ("region_x", "region_y", "region_width", "region_height")
"""Manifest columns of a frame's DICOM ultrasound region (x, y, w, h) in px, for ``crop: dicom``."""


def fold_checkpoint(fold: int) -> Path:
    """``models/folds/<fold>/checkpoint.pt``: fold ``fold``'s last-epoch checkpoint."""
    return CHECKPOINT_FILE.parent / FOLDS / str(fold) / CHECKPOINT_FILE.name


def fold_dvclive_dir(fold: int) -> Path:
    """``dvclive/folds/<fold>``: fold ``fold``'s training curves."""
    return DVCLIVE_DIR / FOLDS / str(fold)


def fold_reports_dir(fold: int) -> Path:
    """``reports/folds/<fold>``: fold ``fold``'s evaluation on its validation (out-of-fold) patients."""
    return REPORTS_DIR / FOLDS / str(fold)
