"""What a case report says, separate from how it is drawn (no Qt): the figures and their provenance.

:func:`report_json` gives the machine-readable record written beside the PDF
(:mod:`app.report_pdf` draws the same :class:`CaseReport`). Nothing here carries a patient's
name: the case is named by ``case_id`` (an accession number or study ID the user confirms),
and frames by their position in the case and their plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

REPORT_SCHEMA = "trus-case-report/1"
ASSISTED_STATEMENT = ("Measurements are software-assisted (automatic segmentation and calipers, reviewed and "
                      "corrected by the user) and were accepted by the user before this report was written.")


@dataclass(frozen=True)
class ReportCaliper:
    """One caliper as drawn and measured.

    Attributes:
        name: ``width``, ``height``, ``length`` or the user's ``caliper N``.
        start_xy, end_xy: (x, y) frame px of its ends.
        length_px: Euclidean length, px (>= 0).
        length_mm: length in mm, or None without a pixel spacing.
        automatic: placed from the gland mask and not moved by the user.
    """

    name: str
    start_xy: tuple[float, float]
    end_xy: tuple[float, float]
    length_px: float
    length_mm: float | None
    automatic: bool


@dataclass(frozen=True)
class ReportArea:
    """Planimetric area of one class on one frame: ``area_px`` (pixels, >= 0), ``area_mm2`` (mm², or None)."""

    name: str
    area_px: int
    area_mm2: float | None


@dataclass(frozen=True)
class ReportFrame:
    """One frame used in the report.

    Attributes:
        number: 1-based position of the frame in the case.
        plane: ``transverse``, ``sagittal`` or None.
        role: what the frame gives the volume (``width and height``, ``length``) or "".
        overlay_rgb: (H, W, 3) uint8, the frame with the class masks drawn over it (not the calipers:
            the renderer draws them from ``calipers``).
        calipers: the frame's calipers.
        areas: per class, the planimetric area.
        spacing_mm: (x, y) mm per px, or None.
        spacing_source: ``dicom``, ``depth_scale``, ``manual`` or ``none``.
        spacing_note: how the spacing was found (or why not).
        edited: whether the user edited the masks.
        review_reason: why the model's gland was flagged for review, or None.
    """

    number: int
    plane: str | None
    role: str
    overlay_rgb: np.ndarray
    calipers: tuple[ReportCaliper, ...]
    areas: tuple[ReportArea, ...]
    spacing_mm: tuple[float, float] | None
    spacing_source: str
    spacing_note: str
    edited: bool
    review_reason: str | None


@dataclass(frozen=True)
class ReportModel:
    """The model that segmented the frames: file name, architecture, versions, test metrics and the threshold used."""

    file_name: str
    arch: str
    encoder: str
    code_version: str
    dataset_version: str
    test_metrics: dict[str, Any]
    threshold: float


@dataclass(frozen=True)
class CaseReport:
    """Everything a report states.

    Attributes:
        case_id: the case identifier the user confirmed (never a patient's name).
        created: ISO 8601 local time the report was made.
        software_version: the app's version.
        width_mm, height_mm, length_mm: the three diameters, mm (> 0).
        volume_ml: pi/6 x length x width x height, mL.
        psa_ng_per_ml: serum PSA (ng/mL, >= 0) or None when not entered.
        psa_density: ng/mL/cc, or None without a PSA.
        psa_threshold: the PSA density threshold, ng/mL/cc (> 0).
        psa_flag: density >= threshold, or None without a PSA.
        accepted_at: ISO 8601 local time the user accepted the measurements.
        frames: the frames used (transverse first).
        model: the model and its threshold.
        edited: whether any mask or caliper of the frames used was changed by the user.
        statement: the software-assisted, accepted-by-the-user line.
    """

    case_id: str
    created: str
    software_version: str
    width_mm: float
    height_mm: float
    length_mm: float
    volume_ml: float
    psa_ng_per_ml: float | None
    psa_density: float | None
    psa_threshold: float
    psa_flag: bool | None
    accepted_at: str
    frames: tuple[ReportFrame, ...]
    model: ReportModel
    edited: bool
    statement: str = field(default=ASSISTED_STATEMENT)


def _caliper_json(caliper: ReportCaliper) -> dict[str, Any]:
    return {"name": caliper.name, "start_xy": list(caliper.start_xy), "end_xy": list(caliper.end_xy),
            "length_px": caliper.length_px, "length_mm": caliper.length_mm, "automatic": caliper.automatic}


def _frame_json(frame: ReportFrame) -> dict[str, Any]:
    return {"number": frame.number, "plane": frame.plane, "role": frame.role,
            "size_px": [int(frame.overlay_rgb.shape[1]), int(frame.overlay_rgb.shape[0])],
            "spacing_mm": list(frame.spacing_mm) if frame.spacing_mm is not None else None,
            "spacing_source": frame.spacing_source, "spacing_note": frame.spacing_note,
            "edited": frame.edited, "review_reason": frame.review_reason,
            "calipers": [_caliper_json(c) for c in frame.calipers],
            "areas": [{"name": a.name, "area_px": a.area_px, "area_mm2": a.area_mm2} for a in frame.areas]}


def report_json(report: CaseReport) -> dict[str, Any]:
    """The report as a JSON-ready dict (the same figures and provenance as the PDF; no pixels)."""
    model = report.model
    return {
        "schema": REPORT_SCHEMA, "case_id": report.case_id, "created": report.created,
        "software_version": report.software_version,
        "measurements": {"width_mm": report.width_mm, "height_mm": report.height_mm, "length_mm": report.length_mm,
                         "volume_ml": report.volume_ml, "volume_formula": "pi/6 x length x width x height",
                         "psa_ng_per_ml": report.psa_ng_per_ml, "psa_density_ng_per_ml_per_cc": report.psa_density,
                         "psa_density_threshold": report.psa_threshold, "psa_density_flag": report.psa_flag},
        "accepted": True, "accepted_at": report.accepted_at, "edited": report.edited, "statement": report.statement,
        "model": {"file_name": model.file_name, "arch": model.arch, "encoder": model.encoder,
                  "code_version": model.code_version, "dataset_version": model.dataset_version,
                  "test_metrics": model.test_metrics, "threshold": model.threshold},
        "frames": [_frame_json(frame) for frame in report.frames],
    }
