"""What leaves the workstation from a case: the report's record and the corrected frames (no Qt).

:func:`case_report` gathers the accepted measurements, the frames used for the volume (their
overlays, calipers, areas and calibration), the model and the threshold into a
:class:`app.report_data.CaseReport`; :func:`corrected_frames` turns every frame whose masks
the user edited into a :class:`pipeline.corrections.CorrectedFrame` named like the image in the
Roboflow project. Both read the case's kept work and model outputs; neither changes them.
"""

from __future__ import annotations

from datetime import datetime
from importlib import metadata

import numpy as np

from app.case import Case, FrameWork
from app.case_volume import VolumeFigures
from app.report_data import CaseReport, ReportArea, ReportCaliper, ReportFrame, ReportModel
from app.session import Session
from pipeline.corrections import CorrectedFrame
from pipeline.inference.contract import ModelContract
from pipeline.inference.measure import class_areas, draw_overlay

ROLES = {"transverse": "width and height", "sagittal": "length"}
"""What the frame chosen for each plane gives the volume."""
PACKAGE = "trus-seg"


class CaseOutputError(ValueError):
    """The case cannot give this output yet (the message says what to do)."""


def software_version() -> str:
    """The installed package's version, or "unknown" when running from a checkout that was never installed."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


def frame_masks(session: Session, number: int) -> np.ndarray | None:
    """(C, H, W) bool masks of case frame ``number`` as the user last saw them: edited, else the model's at the
    current threshold; None when the frame has neither (never segmented while the case was open)."""
    work = session.work_on(number)
    if work is not None and work.edited is not None:
        return work.edited
    segmentation = session.case.segmentation(number) if session.case is not None else None
    return None if segmentation is None else segmentation.masks(session.threshold)


def region_only(gray: np.ndarray, region_box: tuple[int, int, int, int] | None) -> np.ndarray:
    """(H, W) uint8 ``gray`` with 0 outside the DICOM ultrasound region (x, y, width, height px), where scanners
    burn in the patient's name, ID and the date; unchanged without a region."""
    if region_box is None:
        return gray
    x, y, width, height = region_box
    kept = np.zeros_like(gray)
    kept[y:y + height, x:x + width] = gray[y:y + height, x:x + width]
    return kept


def _report_frame(session: Session, number: int, plane: str, colours: list[tuple[int, int, int]] | None
                  ) -> ReportFrame:
    case, work = session.case, session.work_on(number)
    assert case is not None and work is not None  # a volume frame always has its work
    masks = frame_masks(session, number)
    if masks is None:
        raise CaseOutputError(f"the {plane} frame ({number + 1}) has not been segmented since the case was opened: "
                              "show it once, then write the report")
    frame = case.read(number)
    gray = region_only(frame.gray, frame.region_box)  # no burned-in identifiers in the report
    calibration = work.calibration
    spacing = calibration.spacing_mm if calibration is not None else None
    segmentation = case.segmentation(number)
    review = segmentation.review_reason(session.threshold) if segmentation is not None else None
    return ReportFrame(
        number=number + 1, plane=plane, role=ROLES[plane], overlay_rgb=draw_overlay(gray, masks, session.opacity,
                                                                                      colours),
        calipers=tuple(ReportCaliper(c.name, tuple(c.start_xy), tuple(c.end_xy), c.length_px, c.length_mm(spacing),
                                     c.automatic) for c in work.calipers),
        areas=tuple(ReportArea(a.name, a.pixels, a.mm2) for a in class_areas(masks, session.classes, spacing)),
        spacing_mm=spacing, spacing_source=calibration.source if calibration is not None else "none",
        spacing_note=calibration.note if calibration is not None else "", edited=work.edited is not None,
        review_reason=review)


def _edited(work: FrameWork) -> bool:
    return work.edited is not None or any(not caliper.automatic for caliper in work.calipers)


def case_report(session: Session, contract: ModelContract, model_file: str,
                colours: list[tuple[int, int, int]] | None = None) -> CaseReport:
    """The report of the open case's accepted measurements.

    Args:
        session: the app's session with an open case whose measurements the user accepted.
        contract: the model's contract (name, versions, test metrics).
        model_file: the model's file name (no folder: folders may name a patient).
        colours: RGB per class for the overlays (default: the app's class colours).

    Raises:
        CaseOutputError: no case, the measurements are not accepted (or changed since), no case
            identifier, or a frame used for the volume has no masks yet.
    """
    case = session.case
    if case is None:
        raise CaseOutputError("open a case first")
    if not session.accepted:
        raise CaseOutputError("accept the measurements first (Volume › Accept): the report states accepted figures")
    if not case.case_id.strip():
        raise CaseOutputError("the case has no identifier: enter an accession number or study ID")
    figures: VolumeFigures | None = session.volume()
    assert figures is not None and figures.volume_ml is not None  # accepted implies a complete volume
    frames = tuple(_report_frame(session, case.volume_frames[plane], plane, colours)
                   for plane in ("transverse", "sagittal"))
    psa = figures.psa
    model = ReportModel(model_file, contract.arch, contract.encoder, contract.code_version, contract.dataset_version,
                        dict(contract.metrics), session.threshold)
    return CaseReport(
        case_id=case.case_id.strip(), created=datetime.now().astimezone().isoformat(timespec="seconds"),
        software_version=software_version(), width_mm=figures.width_mm, height_mm=figures.height_mm,
        length_mm=figures.length_mm, volume_ml=figures.volume_ml,
        psa_ng_per_ml=case.psa_ng_per_ml, psa_density=psa.density if psa is not None else None,
        psa_threshold=session.psa_threshold, psa_flag=psa.reaches_threshold if psa is not None else None,
        accepted_at=str(case.accepted_at), frames=frames, model=model,
        edited=any(_edited(session.work_on(case.volume_frames[plane])) for plane in ROLES))


def corrected_frames(session: Session) -> list[CorrectedFrame]:
    """Every frame of the open case whose masks the user edited, in case order, named like its image in the
    Roboflow project (the file's name; a cine frame's ``<stem>_fNNN.png``).

    Raises:
        CaseOutputError: no case or no model, or no frame was edited.
    """
    case: Case | None = session.case
    if case is None or not session.classes:
        raise CaseOutputError("open a model and a case first")
    frames = []
    for number, ref in enumerate(case.frames):
        work = session.work_on(number)
        if work is None or work.edited is None:
            continue
        frames.append(CorrectedFrame(ref.image_name, work.edited.copy(), session.classes))
    if not frames:
        raise CaseOutputError("no frame of this case has edited masks: correct a mask first (brush, eraser, fill)")
    return frames
