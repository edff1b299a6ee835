"""``python -m app.screenshots``: the README's pictures and report, taken by the app on a tiny case."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest
from PySide6.QtWidgets import QMessageBox

from app.screenshots import CASE_ID, WINDOW_SIZE, main, take
from tests.test_app import rect_frame
from tests.test_measure_cli import write_ultrasound_dicom
from tests.tiny_models import write_threshold_model


@pytest.fixture
def case(tmp_path: Path) -> tuple[Path, Path]:
    """A model and a case folder of a transverse and a sagittal DICOM at 0.5 mm/px (planes in the names)."""
    folder = tmp_path / "case"
    folder.mkdir()
    for name in ("P1_F01_transverse.dcm", "P1_F02_sagittal.dcm"):
        write_ultrasound_dicom(folder / name, rect_frame(), (0.5, 0.5))
    return write_threshold_model(tmp_path / "model.onnx"), folder


def test_the_pictures_and_the_report_are_written(qapp, case: tuple[Path, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: pytest.fail(f"error dialog: {args[2]}"))
    model, folder = case
    out = tmp_path / "docs"
    out.mkdir()
    written = take(folder, model, out, psa=4.0)
    expected = ["app-measuring.png", "report.pdf", "report.json", "app-editing.png"]
    if shutil.which("pdftoppm"):
        expected.append("report-page1.png")
    assert [path.name for path in written] == expected
    for name in ("app-measuring.png", "app-editing.png"):
        height, width = cv2.imread(str(out / name)).shape[:2]
        assert (width, height) == WINDOW_SIZE
    report = json.loads((out / "report.json").read_text())
    assert report["case_id"] == CASE_ID and report["measurements"]["psa_ng_per_ml"] == 4.0
    assert [frame["plane"] for frame in report["frames"]] == ["transverse", "sagittal"]
    assert sorted(p.name for p in folder.iterdir()) == ["P1_F01_transverse.dcm", "P1_F02_sagittal.dcm"]  # no case file


def test_existing_pictures_are_kept_without_force(qapp, case: tuple[Path, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    model, folder = case
    (tmp_path / "app-editing.png").write_bytes(b"mine")
    assert main([str(folder), "--model", str(model), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"screenshots: error: {tmp_path}: app-editing.png already there "
                                       "(--force replaces them)\n")
    assert (tmp_path / "app-editing.png").read_bytes() == b"mine"


def test_a_case_without_both_planes_is_refused(qapp, case: tuple[Path, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    model, folder = case
    (folder / "P1_F02_sagittal.dcm").unlink()
    out = tmp_path / "docs"
    out.mkdir()
    assert main([str(folder), "--model", str(model), "--out", str(out)]) == 2
    assert "needs a transverse and a sagittal frame (found ['transverse'])" in capsys.readouterr().err
    assert list(out.iterdir()) == []
