"""The clinician's PDF report (app/report_pdf.py): what it says, that it is written atomically, and off the GUI thread."""

from __future__ import annotations

import dataclasses
import json
import threading
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pypdf
import pytest

from app import report_pdf
from app.report_data import CaseReport, ReportArea, ReportCaliper, ReportFrame, ReportModel, report_json
from app.report_pdf import ReportWriter, render_report_pdf, write_report


def _overlay(colour: tuple[int, int, int]) -> np.ndarray:
    image = np.full((150, 200, 3), 90, np.uint8)
    cv2.ellipse(image, (100, 75), (60, 40), 0, 0, 360, colour, -1)
    return image


def _frame(number: int, plane: str) -> ReportFrame:
    transverse = plane == "transverse"
    calipers = ((ReportCaliper("width", (40.0, 75.0), (160.0, 75.0), 120.0, 36.0, True),
                 ReportCaliper("height", (100.0, 35.0), (100.0, 115.0), 80.0, 24.0, False)) if transverse
                else (ReportCaliper("length", (30.0, 75.0), (180.0, 75.0), 150.0, 45.0, True),))
    return ReportFrame(number=number, plane=plane, role="width and height" if transverse else "length",
                       overlay_rgb=_overlay((200, 60, 60) if transverse else (60, 160, 60)), calipers=calipers,
                       areas=(ReportArea("gland", 7540, 678.6),), spacing_mm=(0.3, 0.3), spacing_source="depth_scale",
                       spacing_note="depth scale read from the frame", edited=number == 2,
                       review_reason="small gland" if number == 2 else None)


@pytest.fixture
def report() -> CaseReport:
    """Two frames (transverse, sagittal), a PSA density above the 0.15 threshold."""
    model = ReportModel(file_name="unet-resnet34-v3.onnx", arch="unet", encoder="resnet34", code_version="a1b2c3d",
                        dataset_version="trus-ds-7", test_metrics={"dice": 0.912, "iou": {"gland": 0.85}, "n": 40},
                        threshold=0.5)
    return CaseReport(case_id="ACC-2024-0042", created="2025-03-04T10:11:12", software_version="0.1.0",
                      width_mm=36.0, height_mm=24.0, length_mm=45.0, volume_ml=20.36, psa_ng_per_ml=4.0,
                      psa_density=0.196, psa_threshold=0.15, psa_flag=True, accepted_at="2025-03-04T10:15:00",
                      frames=(_frame(1, "transverse"), _frame(2, "sagittal")), model=model, edited=True)


def pdf_text(path: Path) -> tuple[int, str]:
    """The page count and the text of a PDF, as a real reader extracts it (whitespace runs made one space)."""
    reader = pypdf.PdfReader(path)
    text = " ".join(page.extract_text() for page in reader.pages)
    return len(reader.pages), " ".join(unicodedata.normalize("NFC", text).split())


def test_the_pdf_states_the_case_and_its_figures(qapp, tmp_path: Path, report: CaseReport) -> None:
    pdf_path, json_path = write_report(report, tmp_path / "case.pdf")
    assert (pdf_path, json_path) == (tmp_path / "case.pdf", tmp_path / "case.json")
    assert pdf_path.read_bytes().startswith(b"%PDF")
    pages, text = pdf_text(pdf_path)
    assert pages >= 1
    for expected in ("ACC-2024-0042", "Width 36.0 mm", "Height 24.0 mm", "Length 45.0 mm", "20.4 mL",
                     "π/6 × length × width × height", "PSA 4.00 ng/mL", "0.196 ng/mL/cc",
                     "≥ 0.15 ng/mL/cc: above threshold", "Frame 1: transverse (width and height)",
                     "Frame 2: sagittal (length)", "Caliper width 36.0 mm (automatic)",
                     "Caliper height 24.0 mm (placed by the user)", "the depth scale burned into the frame", "0.3000 × 0.3000 mm/px",
                     "depth scale read from the frame", "Area gland 678.6 mm²", "flagged: small gland",
                     "unet-resnet34-v3.onnx", "unet / resnet34", "a1b2c3d", "trus-ds-7", "dice 0.912",
                     "iou / gland 0.850", "Threshold 0.50", "yes: masks or calipers were changed by the user",
                     report.statement, "2025-03-04T10:15:00", "2025-03-04T10:11:12"):
        assert expected in text, expected
    for page in range(1, pages + 1):
        assert f"Case ACC-2024-0042 page {page} of {pages}" in text


def test_the_page_count_is_the_one_returned(qapp, tmp_path: Path, report: CaseReport) -> None:
    pages = render_report_pdf(report, tmp_path / "r.pdf")
    assert pages == len(pypdf.PdfReader(tmp_path / "r.pdf").pages)


@pytest.mark.parametrize(("psa", "density", "flag", "shown", "absent"), [
    (4.0, 0.196, True, "≥ 0.15 ng/mL/cc: above threshold", "below threshold"),
    (3.0, 0.150, True, "≥ 0.15 ng/mL/cc: above threshold", "below threshold"),  # at the threshold
    (2.0, 0.098, False, "< 0.15 ng/mL/cc: below threshold", "above threshold"),
    (None, None, None, "PSA not entered", "ng/mL/cc:"),
])
def test_the_psa_density_flag(qapp, tmp_path: Path, report: CaseReport, psa, density, flag, shown: str,
                              absent: str) -> None:
    report = dataclasses.replace(report, psa_ng_per_ml=psa, psa_density=density, psa_flag=flag)
    write_report(report, tmp_path / "r.pdf")
    _, text = pdf_text(tmp_path / "r.pdf")
    assert shown in text
    assert absent not in text
    if density is not None:
        assert f"PSA density {density:.3f} ng/mL/cc" in text


def test_the_json_beside_it_is_the_report_record(qapp, tmp_path: Path, report: CaseReport) -> None:
    _, json_path = write_report(report, tmp_path / "case.pdf")
    assert json.loads(json_path.read_text(encoding="utf-8")) == report_json(report)
    assert json_path.read_text(encoding="utf-8").startswith('{\n  "schema"')  # indent=2, keys in their order


@pytest.mark.parametrize("existing", ["case.pdf", "case.json"])
def test_an_existing_file_is_refused_and_left_untouched(qapp, tmp_path: Path, report: CaseReport,
                                                        existing: str) -> None:
    (tmp_path / existing).write_bytes(b"the user's own file")
    with pytest.raises(FileExistsError, match=existing):
        write_report(report, tmp_path / "case.pdf")
    assert (tmp_path / existing).read_bytes() == b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]


def test_overwrite_replaces_both(qapp, tmp_path: Path, report: CaseReport) -> None:
    (tmp_path / "case.pdf").write_bytes(b"old")
    (tmp_path / "case.json").write_bytes(b"old")
    write_report(report, tmp_path / "case.pdf", overwrite=True)
    assert pdf_text(tmp_path / "case.pdf")[1].count("ACC-2024-0042") >= 1
    assert json.loads((tmp_path / "case.json").read_text(encoding="utf-8"))["case_id"] == "ACC-2024-0042"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.json", "case.pdf"]


def test_a_missing_folder_is_an_error_and_is_not_created(qapp, tmp_path: Path, report: CaseReport) -> None:
    with pytest.raises(FileNotFoundError):
        write_report(report, tmp_path / "unplugged" / "case.pdf")
    assert list(tmp_path.iterdir()) == []


def test_a_failure_while_writing_leaves_nothing_behind(qapp, tmp_path: Path, report: CaseReport,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The PDF is half-written when the drawing fails: neither file nor any temporary file remains,
    and existing files keep their content under ``overwrite``."""
    def half_written(report: CaseReport, path: Path) -> int:
        Path(path).write_bytes(b"%PDF-1.4 half")
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(report_pdf, "render_report_pdf", half_written)
    with pytest.raises(OSError, match="No space left"):
        write_report(report, tmp_path / "case.pdf")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "case.pdf").write_bytes(b"old")
    with pytest.raises(OSError):
        write_report(report, tmp_path / "case.pdf", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.pdf"]
    assert (tmp_path / "case.pdf").read_bytes() == b"old"


def test_data_that_is_not_json_leaves_nothing_behind(qapp, tmp_path: Path, report: CaseReport) -> None:
    model = dataclasses.replace(report.model, test_metrics={"dice": object()})
    with pytest.raises(TypeError):
        write_report(dataclasses.replace(report, model=model), tmp_path / "case.pdf")
    assert list(tmp_path.iterdir()) == []


def test_many_frames_give_more_pages(qapp, tmp_path: Path, report: CaseReport) -> None:
    few = render_report_pdf(report, tmp_path / "few.pdf")
    frames = tuple(_frame(number, "transverse" if number % 2 else "sagittal") for number in range(1, 9))
    many = render_report_pdf(dataclasses.replace(report, frames=frames), tmp_path / "many.pdf")
    assert many > few
    pages, text = pdf_text(tmp_path / "many.pdf")
    assert pages == many
    assert all(f"Frame {number}:" in text for number in range(1, 9))
    assert report.statement in text  # nothing lost at a page break
    assert f"page {many} of {many}" in text


def test_the_writer_reports_the_paths_and_draws_off_the_gui_thread(qtbot, tmp_path: Path, report: CaseReport,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []

    def recording(report: CaseReport, path: Path) -> int:
        threads.append(threading.get_ident())
        return render_report_pdf(report, path)

    monkeypatch.setattr(report_pdf, "render_report_pdf", recording)
    writer = ReportWriter()
    with qtbot.waitSignal(writer.finished, timeout=30_000) as blocker:
        writer.submit(report, tmp_path / "case.pdf")
    assert blocker.args == [tmp_path / "case.pdf", tmp_path / "case.json"]
    assert threads and threads[0] != threading.get_ident()
    assert pdf_text(tmp_path / "case.pdf")[1].count("ACC-2024-0042") >= 1
    writer.shutdown()


def test_the_writer_reports_a_failure_naming_the_file(qtbot, tmp_path: Path, report: CaseReport) -> None:
    (tmp_path / "case.json").write_text("{}")
    writer = ReportWriter()
    with qtbot.waitSignal(writer.failed, timeout=30_000) as blocker:
        writer.submit(report, tmp_path / "case.pdf")
    message = blocker.args[0]
    assert "\n" not in message
    assert str(tmp_path / "case.pdf") in message and "case.json" in message and "exists" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.json"]
    writer.shutdown()


def test_text_is_printed_as_typed_not_read_as_markup(qapp, tmp_path: Path, report: CaseReport) -> None:
    report = dataclasses.replace(report, case_id="A&B <7>", frames=(dataclasses.replace(
        report.frames[0], spacing_note="scale <missing> & guessed"),))
    write_report(report, tmp_path / "r.pdf")
    _, text = pdf_text(tmp_path / "r.pdf")
    assert "Case A&B <7>" in text and "scale <missing> & guessed" in text
