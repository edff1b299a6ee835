"""The sample's truth beside the export: each frame's plane, level and pixel spacing, each patient's gland.

Two CSV files at the export's root (Roboflow's readers and the pull stage look only into the
split folders, so they pass through untouched):

- ``trus_sample_frames.csv``: ``original_name`` (``P007_F03_transverse.png``), ``patient``
  (``P007``), ``plane`` (``transverse|sagittal``), ``level`` (``base|mid|apex|beyond_apex``,
  ``midline|off_midline|lateral``), ``position`` (transverse: z / (L/2), positive towards the
  base; sagittal: x / (W/2); beyond +-1 the probe misses the gland), ``spacing_x_mm``,
  ``spacing_y_mm`` (10 / the fan's px per cm: the depth scale's), ``width``, ``height`` (px).
  It has the columns of a ``trus frames`` manifest, so ``data.frames_manifest`` can point at it.
- ``trus_sample_patients.csv``: ``patient``, ``length_mm``, ``width_mm``, ``height_mm`` (the gland's
  true extents) and ``volume_ml`` (pi/6 * L * W * H).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from pipeline.synthetic.plan import FramePlan, PatientExam, patient_label

FRAMES_MANIFEST = "trus_sample_frames.csv"
PATIENTS_MANIFEST = "trus_sample_patients.csv"
FRAME_COLUMNS = ("original_name", "patient", "plane", "level", "position", "spacing_x_mm", "spacing_y_mm",
                 "width", "height")
PATIENT_COLUMNS = ("patient", "length_mm", "width_mm", "height_mm", "volume_ml")


def frame_row(plan: FramePlan, spacing_mm: float, size: tuple[int, int]) -> dict[str, str]:
    """One row of ``trus_sample_frames.csv``.

    Args:
        plan: the frame's plan.
        spacing_mm: its pixel spacing, mm per px (isotropic).
        size: its (width, height) px.
    """
    cut = plan.frame_slice
    return {"original_name": plan.original_name, "patient": patient_label(plan.patient), "plane": cut.plane,
            "level": cut.level, "position": f"{cut.position:.3f}", "spacing_x_mm": f"{spacing_mm:.6f}",
            "spacing_y_mm": f"{spacing_mm:.6f}", "width": str(size[0]), "height": str(size[1])}


def patient_row(patient: int, exam: PatientExam) -> dict[str, str]:
    """One row of ``trus_sample_patients.csv``: the gland's true extents (mm) and ellipsoid volume (mL)."""
    gland = exam.anatomy
    return {"patient": patient_label(patient), "length_mm": f"{gland.length_mm:.2f}", "width_mm": f"{gland.width_mm:.2f}",
            "height_mm": f"{gland.height_mm:.2f}", "volume_ml": f"{gland.volume_ml:.3f}"}


def write_manifests(root: Path, frame_rows: Iterable[dict[str, str]], exams: Mapping[int, PatientExam]) -> None:
    """Writes both manifests into ``root``, frames by (patient, frame) and patients by number."""
    rows = sorted(frame_rows, key=lambda row: row["original_name"])
    _write_csv(root / FRAMES_MANIFEST, FRAME_COLUMNS, rows)
    _write_csv(root / PATIENTS_MANIFEST, PATIENT_COLUMNS, [patient_row(p, exams[p]) for p in sorted(exams)])


def read_sample_manifests(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The frames and patients manifests of a sample export, as written (names and levels as str).

    Raises:
        FileNotFoundError: ``root`` is not a sample export (a manifest is missing).
    """
    text = {"original_name": str, "patient": str, "plane": str, "level": str}
    return (pd.read_csv(root / FRAMES_MANIFEST, dtype=text, keep_default_na=False),
            pd.read_csv(root / PATIENTS_MANIFEST, dtype={"patient": str}, keep_default_na=False))


def _write_csv(path: Path, columns: tuple[str, ...], rows: Iterable[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
