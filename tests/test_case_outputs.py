"""The report and the corrections export, driven through the window's widgets and actions (pytest-qt, offscreen).

A case of two ultrasound DICOMs at a known spacing (a bright 30 x 20 px rectangle, which the
tiny threshold model segments as the gland) is measured, accepted and reported; the PDF is read
back with pypdf and the JSON beside it is checked against values computed here by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from pypdf import PdfReader
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from app.main_window import MainWindow
from app.outputs_controller import report_file_name
from pipeline.corrections import read_corrections
from tests.app_fixtures import measure_case_volume
from tests.test_app import GLAND, drag, rect_frame, wait_segmented
from tests.test_measure_cli import write_ultrasound_dicom

SPACING_MM = 0.5
PATIENT_NAME = "DOE^JANE"
CASE_ID = "ACC-2026-0042"


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Questions the window asked; every one is answered Yes (closing: Discard)."""
    questions: list[str] = []

    def answer(parent, title, text, buttons, *args):
        questions.append(text)
        if buttons & QMessageBox.StandardButton.Discard:
            return QMessageBox.StandardButton.Discard
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    return questions


@pytest.fixture
def case_folder(tmp_path: Path) -> Path:
    """Two DICOMs (a transverse and a sagittal frame) at SPACING_MM, carrying a patient's name."""
    folder = tmp_path / "study"
    folder.mkdir()
    for name in ("1-transverse.dcm", "2-sagittal.dcm"):
        path = write_ultrasound_dicom(folder / name, rect_frame(), (SPACING_MM, SPACING_MM))
        import pydicom
        dataset = pydicom.dcmread(path)
        dataset.PatientName, dataset.PatientID = PATIENT_NAME, "PID-777"
        dataset.save_as(path)
    return folder


def measure_and_accept(qtbot, window: MainWindow, folder: Path, psa: float) -> None:
    """Opens the case, chooses each frame's plane and uses it for the volume, enters the PSA and accepts."""
    measure_case_volume(qtbot, window, folder, psa)
    qtbot.mouseClick(window.panel.volume_box.accept_button, Qt.MouseButton.LeftButton)
    assert window.session.accepted


def caliper_mm(report: dict, plane: str, name: str) -> float:
    frame = next(f for f in report["frames"] if f["plane"] == plane)
    caliper = next(c for c in frame["calipers"] if c["name"] == name)
    (x0, y0), (x1, y1) = caliper["start_xy"], caliper["end_xy"]
    return math.hypot(x1 - x0, y1 - y0) * SPACING_MM


def wait_written(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.outputs.pending is None, timeout=30_000)


@pytest.mark.parametrize("psa, flagged", [(4.0, True), (0.1, False)])  # the volume is about 1.6 mL
def test_the_report_states_the_accepted_figures(qtbot, window: MainWindow, case_folder: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch, psa: float, flagged: bool) -> None:
    measure_and_accept(qtbot, window, case_folder, psa)
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: (f"  {CASE_ID} ", True))
    chosen: list[str] = []

    def save_dialog(parent, title, start, *args):
        chosen.append(start)
        return str(tmp_path / "out" / "report"), PDF_FILTER

    PDF_FILTER = "PDF reports (*.pdf)"
    (tmp_path / "out").mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    window.report_action.trigger()
    wait_written(qtbot, window)
    assert chosen == [str(case_folder / f"{CASE_ID}-report.pdf")]
    pdf, record = tmp_path / "out" / "report.pdf", tmp_path / "out" / "report.json"
    assert window.statusBar().currentMessage() == f"Report written: report.pdf and report.json in {pdf.parent}."

    report = json.loads(record.read_text())
    width, height = caliper_mm(report, "transverse", "width"), caliper_mm(report, "transverse", "height")
    length = caliper_mm(report, "sagittal", "length")
    diagonal = math.hypot(30, 20) * SPACING_MM  # the 30 x 20 px gland at 0.5 mm/px: no chord is longer
    assert 14.5 <= width <= diagonal and 9.5 <= height <= diagonal and 14.5 <= length <= diagonal
    volume_ml = math.pi / 6 * length * width * height / 1000.0
    figures = report["measurements"]
    assert figures["width_mm"] == pytest.approx(width) and figures["length_mm"] == pytest.approx(length)
    assert figures["volume_ml"] == pytest.approx(volume_ml, rel=1e-9)
    assert figures["psa_density_ng_per_ml_per_cc"] == pytest.approx(psa / volume_ml, rel=1e-9)
    assert figures["psa_density_flag"] is flagged and figures["psa_density_threshold"] == 0.15
    assert report["case_id"] == CASE_ID and report["accepted"] and report["edited"] is False
    assert [f["spacing_source"] for f in report["frames"]] == ["dicom", "dicom"]
    assert report["model"]["file_name"] == "model.onnx" and report["model"]["threshold"] == 0.5

    reader = PdfReader(str(pdf))
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)  # pypdf: tabs between words
    assert len(reader.pages) >= 1
    for expected in (CASE_ID, f"{volume_ml:.1f} mL", "software-assisted",
                     "model.onnx"):
        assert expected in text, expected
    for identifier in ("DOE", "JANE", "PID-777"):  # the patient is never named
        assert identifier not in text and identifier not in record.read_text()


def test_the_report_needs_accepted_measurements_and_a_case_id(qtbot, window: MainWindow, case_folder: Path,
                                                              errors: list[str], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert window.open_frame(case_folder)
    wait_segmented(qtbot, window)
    assert not window.outputs.write_report(tmp_path / "r.pdf")
    assert errors[-1].startswith("Write report: accept the measurements first")
    measure_and_accept(qtbot, window, case_folder, 4.0)
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: ("", False))  # the user cancels
    assert not window.outputs.write_report(tmp_path / "r.pdf")
    assert window.statusBar().currentMessage() == "Report not written: it needs a case identifier."
    assert list(tmp_path.glob("r.*")) == []


def test_an_edit_after_acceptance_blocks_the_report(qtbot, window: MainWindow, case_folder: Path,
                                                    errors: list[str], tmp_path: Path) -> None:
    measure_and_accept(qtbot, window, case_folder, 4.0)
    window.tool_actions["brush"].trigger()
    window.panel.edit_box.radius_box.setValue(3)
    drag(window, [(55.0, 25.0), (65.0, 25.0)])  # the sagittal frame's gland grows: its length changes
    assert not window.session.accepted
    assert not window.outputs.write_report(tmp_path / "r.pdf")
    assert errors[-1].startswith("Write report: accept the measurements first")


def test_an_existing_report_is_replaced_only_when_the_user_agrees(qtbot, window: MainWindow, case_folder: Path,
                                                                 asked: list[str], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    measure_and_accept(qtbot, window, case_folder, 4.0)
    window.session.set_case_id(CASE_ID)
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(b"an earlier report")
    with monkeypatch.context() as patch:
        patch.setattr(QMessageBox, "question", lambda *args: asked.append(args[2]) or QMessageBox.StandardButton.No)
        assert not window.outputs.write_report(pdf)
    assert asked == ["r.pdf already exist in " + str(tmp_path) + ". Replace them?"]
    assert pdf.read_bytes() == b"an earlier report" and not pdf.with_suffix(".json").exists()
    assert window.outputs.write_report(pdf)
    wait_written(qtbot, window)
    assert pdf.read_bytes().startswith(b"%PDF") and json.loads(pdf.with_suffix(".json").read_text())["case_id"] == CASE_ID


@pytest.mark.parametrize("case_id, name", [("ACC-1", "ACC-1-report.pdf"), ("a/b c", "a_b_c-report.pdf"),
                                           ("  ", "case-report.pdf")])
def test_report_file_names(case_id: str, name: str) -> None:
    assert report_file_name(case_id) == name


def brush_gland(window: MainWindow) -> np.ndarray:
    window.tool_actions["brush"].trigger()
    window.panel.edit_box.radius_box.setValue(2)
    drag(window, [(55.0, 25.0), (70.0, 25.0)])
    return window.session.masks().copy()


def test_corrections_export_writes_the_edited_frames_for_roboflow(qtbot, window: MainWindow, tmp_path: Path,
                                                                 asked: list[str], errors: list[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("P001_F01.png", "P001_F02.png", "P001_F03.png"):
        cv2.imwrite(str(folder / name), rect_frame())
    assert window.open_frame(folder)
    wait_segmented(qtbot, window)
    assert window.outputs.export_corrections(tmp_path / "none") is None  # nothing edited yet
    assert errors[-1] == ("Export corrections: no frame of this case has edited masks: correct a mask first "
                          "(brush, eraser, fill)") and not (tmp_path / "none").exists()
    first = brush_gland(window)
    window.cases.go_to(2)
    wait_segmented(qtbot, window)
    window.tool_actions["eraser"].trigger()
    drag(window, [(40.0, 25.0)])  # a hole in the third frame's gland
    third = window.session.masks().copy()
    window.cases.go_to(1)  # the open frame is unedited; the edits live in the case
    wait_segmented(qtbot, window)

    out = tmp_path / "corrections"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(out))
    window.export_corrections_action.trigger()
    frames = read_corrections(out)
    assert [f.file_name for f in frames] == ["P001_F01.png", "P001_F03.png"]
    assert frames[0].classes == window.session.classes
    assert np.array_equal(frames[0].masks, first) and np.array_equal(frames[1].masks, third)
    assert not frames[1].masks[GLAND][25, 40]  # the hole is kept

    asked.clear()
    assert window.outputs.export_corrections(out) == out  # an earlier export: replaced after asking
    assert asked == [f"{out} holds corrections exported earlier. Replace them?"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    assert window.outputs.export_corrections(foreign) is None
    assert str(foreign) in errors[-1] and (foreign / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("file, index, count, name", [("P001_F01.png", 0, 1, "P001_F01.png"),
                                                      ("cine.dcm", 0, 12, "cine_f001.png"),
                                                      ("cine.dcm", 11, 12, "cine_f012.png")])
def test_the_image_name_a_correction_is_sent_under(file: str, index: int, count: int, name: str) -> None:
    from app.case import FrameRef
    assert FrameRef(Path(file), index, count).image_name == name


@pytest.mark.parametrize("region_box, kept", [(None, (0, 0, 6, 4)), ((1, 2, 3, 1), (1, 2, 3, 1)),
                                              ((0, 0, 6, 4), (0, 0, 6, 4))])
def test_the_report_shows_only_the_ultrasound_region(region_box, kept) -> None:
    from app.case_outputs import region_only
    gray = np.arange(1, 25, dtype=np.uint8).reshape(4, 6)
    shown = region_only(gray, region_box)
    x, y, width, height = kept
    expected = np.zeros_like(gray)
    expected[y:y + height, x:x + width] = gray[y:y + height, x:x + width]
    assert np.array_equal(shown, expected)
