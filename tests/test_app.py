"""The clinician's desktop app: session model, window, command line, and no torch."""

from __future__ import annotations

import dataclasses
import math
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from app.main_window import MainWindow
from app.panel import metrics_table
from pipeline.inference.contract import THRESHOLD_RANGE
from app.session import Session
from app.settings import AppSettings
from pipeline.imaging.frames import Frame
from pipeline.inference.measure import colour_for
from pipeline.inference.predictor import Segmenter
from pipeline.synthetic import render_phantom
from tests.conftest import APP_LOG_DIR
from tests.tiny_models import write_threshold_model

ROOT = Path(__file__).resolve().parents[1]
HEIGHT, WIDTH = 50, 80
RECT = (slice(15, 35), slice(25, 55))  # 20 x 30 px, edges on the 32 px grid's sample points
INSIDE, OUTSIDE = (40, 25), (5, 5)  # frame pixels (x, y)
GLAND, LESION = 0, 1


def rect_frame(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    gray = np.zeros((height, width), np.uint8)
    gray[RECT] = 255
    return gray


def blend(grey: int, colour: tuple[int, int, int], opacity: float) -> tuple[int, ...]:
    return tuple(int(np.rint((1 - opacity) * grey + opacity * c)) for c in colour)


@pytest.fixture
def frame_png(tmp_path: Path) -> Path:
    path = tmp_path / "case01.png"
    cv2.imwrite(str(path), rect_frame())
    return path


@pytest.fixture
def session(model_path: Path) -> Session:
    segmenter = Segmenter(model_path)
    session = Session()
    session.use_contract(segmenter.contract)
    gray = rect_frame()
    session.set_frame(Path("case01.png"), Frame(gray))
    session.set_segmentation(segmenter.segment(gray))
    return session


def wait_segmented(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: not window.worker.busy and window.session.segmentation is not None, timeout=5000)


def screen_rgb(window: MainWindow, x: int, y: int) -> tuple[int, int, int]:
    """Colour of frame pixel (x, y)'s centre in a grab of the whole window."""
    view = window.view
    point = view.viewport().mapTo(window, view.mapFromScene(QPointF(x + 0.5, y + 0.5)))
    colour = window.grab().toImage().pixelColor(point)
    return colour.red(), colour.green(), colour.blue()


def form_texts(form) -> dict[str, str]:
    texts = {}
    for row in range(form.rowCount()):
        label, field = (form.itemAt(row, role) for role in (form.ItemRole.LabelRole, form.ItemRole.FieldRole))
        if label is not None and field is not None:
            texts[label.widget().text()] = field.widget().text()
    return texts


# Session (no Qt)


@pytest.mark.parametrize("spacing", [None, (0.2, 0.3)])
def test_session_areas(session: Session, spacing: tuple[float, float] | None) -> None:
    segmentation = session.segmentation
    session.set_frame(Path("case01.png"), Frame(session.frame.gray, spacing))
    session.set_segmentation(segmentation)
    assert session.calibration.source == ("none" if spacing is None else "dicom")
    gland, lesion = session.areas()
    assert (gland.name, lesion.name) == ("gland", "lesion")
    assert gland.pixels == pytest.approx(600, abs=8)
    assert gland.pixels + lesion.pixels == pytest.approx(HEIGHT * WIDTH, abs=8)
    if spacing is None:
        assert gland.mm2 is None
    else:
        assert gland.mm2 == pytest.approx(gland.pixels * 0.2 * 0.3)


def test_session_threshold_changes_masks(session: Session) -> None:
    pixels = []
    for threshold in (0.05, 0.5, 0.95):
        session.set_threshold(threshold)
        pixels.append(int(session.masks()[GLAND].sum()))
    assert pixels[0] > pixels[1] > pixels[2]
    session.set_threshold(2.0)
    assert session.threshold == THRESHOLD_RANGE[1] == 0.99
    session.set_threshold(-1.0)
    assert session.threshold == THRESHOLD_RANGE[0] == 0.01


@pytest.mark.parametrize("opacity", [0.0, 0.35, 1.0])
def test_session_overlay_opacity(session: Session, opacity: float) -> None:
    session.set_opacity(opacity)
    overlay = session.overlay()
    x, y = INSIDE
    assert overlay.shape == (HEIGHT, WIDTH, 3)
    assert tuple(overlay[y, x]) == blend(255, colour_for(GLAND), opacity)
    x, y = OUTSIDE
    assert tuple(overlay[y, x]) == blend(0, colour_for(LESION), opacity)


def test_session_hidden_class_and_no_result(session: Session) -> None:
    session.set_visible(GLAND, False)
    x, y = INSIDE
    assert tuple(session.overlay()[y, x]) == (255, 255, 255)
    session.set_frame(Path("other.png"), Frame(rect_frame()))
    assert session.masks() is None and session.areas() == []
    assert tuple(session.overlay()[y, x]) == (255, 255, 255)
    with pytest.raises(ValueError, match="no segmentation"):
        session.save(Path("."))


def test_session_rejects_mismatched_segmentation(session: Session) -> None:
    result = session.segmentation
    session.set_frame(Path("small.png"), Frame(np.zeros((10, 10), np.uint8)))
    with pytest.raises(ValueError, match="does not match"):
        session.set_segmentation(result)


def test_session_pixel_info(session: Session) -> None:
    assert session.pixel_info(*INSIDE) == "x 40  y 25   grey 255   gland 1.00   lesion 0.00"
    assert session.pixel_info(WIDTH, 0) == ""


def test_metrics_table() -> None:
    table = metrics_table({"gland": {"dice": 0.95123, "hd95_mm": None, "assd_mm": 1.25, "frames_with_class": 12,
                                     "missed_frames": 1, "false_positive_frames": 0},
                           "lesion": {"dice": 0.6}, "frames": 30})
    assert "<b>gland</b>" in table and "<b>lesion</b>" in table
    assert "0.951" in table and "n/a" in table and ">frames</td>" in table
    order = [">Dice<", ">HD95 (mm)<", ">ASSD (mm)<", ">Frames with class<", ">Missed frames<", ">False-pos. frames<"]
    assert [table.index(label) for label in order] == sorted(table.index(label) for label in order)
    assert metrics_table({}) == "none recorded"


# Window


def test_open_frame_from_menu_shows_areas_and_overlay(qtbot, window: MainWindow, frame_png: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(frame_png), ""))
    assert not window.save_action.isEnabled()
    window.open_frame_action.trigger()
    assert window.progress.isVisible()  # results arrive through the event loop, never synchronously
    wait_segmented(qtbot, window)
    assert not window.progress.isVisible()
    assert window.save_action.isEnabled()
    gland = window.session.areas()[GLAND]
    assert gland.pixels == pytest.approx(600, abs=8)
    assert window.panel.area_labels[GLAND].text() == f"{gland.pixels:,} px"
    assert screen_rgb(window, *INSIDE) == pytest.approx(blend(255, colour_for(GLAND), 0.35), abs=2)
    assert screen_rgb(window, *OUTSIDE) == pytest.approx(blend(0, colour_for(LESION), 0.35), abs=2)
    assert form_texts(window.panel.frame_form)["Size"] == "80 × 50 px"
    assert form_texts(window.panel.frame_form)["Pixel spacing"].startswith(
        "unknown: areas in px only (no DICOM spacing, no depth scale: 0 tick-like mark(s) outside the fan")
    assert "case01.png" in window.windowTitle()


def test_a_frame_with_a_depth_scale_is_calibrated_from_it(qtbot, window: MainWindow, tmp_path: Path) -> None:
    rendered = render_phantom(np.random.default_rng(2), 640, 436, with_lesion=False)
    path = tmp_path / "scan.png"
    cv2.imwrite(str(path), rendered.image)
    window.open_frame(path)
    wait_segmented(qtbot, window)
    calibration = window.session.calibration
    assert calibration.source == "depth_scale"
    assert calibration.spacing_mm[1] == pytest.approx(rendered.spacing_mm, rel=0.02)
    shown = form_texts(window.panel.frame_form)["Pixel spacing"]
    assert shown == f"{calibration.spacing_mm[0]:.4f} × {calibration.spacing_mm[1]:.4f} mm, from the depth scale " \
                    "burned into the frame"
    gland = window.session.areas()[GLAND]
    assert gland.mm2 == pytest.approx(gland.pixels * calibration.spacing_mm[0] * calibration.spacing_mm[1])


def test_class_checkbox_threshold_and_opacity(qtbot, window: MainWindow, frame_png: Path) -> None:
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    window.panel.class_boxes[GLAND].setChecked(False)
    assert screen_rgb(window, *INSIDE) == (255, 255, 255)
    window.panel.class_boxes[GLAND].setChecked(True)
    window.panel.opacity_slider.setValue(100)
    assert screen_rgb(window, *INSIDE) == pytest.approx(colour_for(GLAND), abs=2)
    window.panel.threshold_slider.setValue(95)
    assert window.session.threshold == pytest.approx(0.95)
    assert window.panel.area_labels[GLAND].text() == f"{window.session.areas()[GLAND].pixels:,} px"
    assert window.session.areas()[GLAND].pixels < 590


def test_zoom_fit_and_actual_size(qtbot, window: MainWindow, frame_png: Path) -> None:
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    view = window.view
    fitted = view.zoom
    assert fitted == pytest.approx(min(view.viewport().width() / WIDTH, view.viewport().height() / HEIGHT), rel=0.05)
    view.zoom_by(3.0)  # larger than the window both ways, so any point can stay put
    assert view.zoom == pytest.approx(fitted * 3.0)
    cursor = QPoint(view.viewport().width() // 3, view.viewport().height() // 3)
    before = view.mapToScene(cursor)
    wheel = QWheelEvent(QPointF(cursor), QPointF(view.viewport().mapToGlobal(cursor)), QPoint(), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    view.wheelEvent(wheel)
    assert view.zoom == pytest.approx(fitted * 3.0 * 1.25)
    after = view.mapToScene(cursor)
    assert (after.x(), after.y()) == pytest.approx((before.x(), before.y()), abs=0.2)  # zoomed around the cursor
    view.actual_size()
    assert view.zoom == 1.0
    view.fit_to_window()
    assert view.zoom == pytest.approx(fitted)


def test_save_writes_bitmask_and_overlay(qtbot, window: MainWindow, frame_png: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    window.save_action.trigger()
    mask = cv2.imread(str(out / "case01_mask.png"), cv2.IMREAD_UNCHANGED)
    overlay = cv2.imread(str(out / "case01_overlay.png"))
    assert mask.shape == (HEIGHT, WIDTH) and mask.dtype == np.uint8
    assert mask[INSIDE[1], INSIDE[0]] == 1 << GLAND and mask[OUTSIDE[1], OUTSIDE[0]] == 1 << LESION
    assert np.count_nonzero(mask & 1) == window.session.areas()[GLAND].pixels
    assert overlay.shape == (HEIGHT, WIDTH, 3)


@pytest.mark.parametrize("answer, replaced", [(QMessageBox.StandardButton.No, False),
                                              (QMessageBox.StandardButton.Yes, True)])
def test_save_asks_before_replacing_files(qtbot, window: MainWindow, frame_png: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, answer, replaced: bool) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "case01_mask.png").write_bytes(b"someone else's file")
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *a: asked.append(text) or answer)
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    result = window.save_results(out)
    assert len(asked) == 1 and "case01_mask.png already exist" in asked[0]
    assert (result is not None) == replaced
    assert ((out / "case01_mask.png").read_bytes() == b"someone else's file") != replaced
    assert (out / "case01_overlay.png").exists() == replaced


def file_mime(path: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    return mime


def drag_events(mime: QMimeData) -> tuple[QDragEnterEvent, QDropEvent]:
    rest = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    return QDragEnterEvent(QPoint(10, 10), *rest), QDropEvent(QPointF(10, 10), *rest)


def test_drag_and_drop_opens_frame_and_model(qtbot, window: MainWindow, frame_png: Path, tmp_path: Path) -> None:
    text_only = QMimeData()
    text_only.setText("case01.png")
    enter, _ = drag_events(text_only)
    window.dragEnterEvent(enter)
    assert not enter.isAccepted()
    frame_mime = file_mime(frame_png)
    enter, drop = drag_events(frame_mime)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    window.dropEvent(drop)
    wait_segmented(qtbot, window)
    assert window.session.frame_path == frame_png
    other_model = write_threshold_model(tmp_path / "other.onnx")
    model_mime = file_mime(other_model)
    window.dropEvent(drag_events(model_mime)[1])
    assert window.segmenter.path == other_model
    wait_segmented(qtbot, window)  # the open frame is re-segmented with the new model


@pytest.mark.parametrize("name, content", [("broken.png", b"not an image"), ("notes.txt", b"x"), ("absent.png", None)])
def test_bad_frame_shows_error_and_window_still_works(qtbot, window: MainWindow, frame_png: Path, errors: list[str],
                                                      tmp_path: Path, name: str, content: bytes | None) -> None:
    bad = tmp_path / name
    if content is not None:
        bad.write_bytes(content)
    assert not window.open_frame(bad)
    assert len(errors) == 1 and name in errors[0] and "\n" not in errors[0]
    assert window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    assert window.session.areas()[GLAND].pixels == pytest.approx(600, abs=8)


def test_bad_model_shows_error_and_keeps_old_model(window: MainWindow, errors: list[str], tmp_path: Path) -> None:
    loaded = window.segmenter
    bad = write_threshold_model(tmp_path / "bare.onnx", with_contract=False)
    assert not window.open_model(bad)
    assert len(errors) == 1 and "bare.onnx" in errors[0]
    assert window.segmenter is loaded


def test_segmentation_failure_is_reported(qtbot, window: MainWindow, frame_png: Path, errors: list[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(gray: np.ndarray, region_box: tuple[int, int, int, int] | None = None) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(window.segmenter, "segment", broken)
    window.open_frame(frame_png)
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert errors == ["Segmentation failed: out of memory"]
    assert not window.progress.isVisible() and not window.save_action.isEnabled()


def test_last_request_wins(qtbot, window: MainWindow, tmp_path: Path) -> None:
    paths = []
    for index, (height, width) in enumerate([(50, 80), (60, 40), (70, 90)]):
        paths.append(tmp_path / f"frame{index}.png")
        cv2.imwrite(str(paths[-1]), rect_frame(height, width))
        window.open_frame(paths[-1])
    wait_segmented(qtbot, window)
    qtbot.wait(100)  # let any superseded result arrive; it must be ignored
    assert window.session.frame_path == paths[-1]
    assert window.session.segmentation.probabilities.shape == (2, 70, 90)


def test_model_metadata_and_hover(qtbot, window: MainWindow, frame_png: Path) -> None:
    texts = form_texts(window.panel.model_form)
    assert texts["Classes"] == "gland, lesion"
    assert texts["Network"] == "tiny-threshold / none"
    assert "Dice" in window.panel.metrics_label.text() and "0.5" in window.panel.metrics_label.text()
    assert (texts["Dataset"], texts["Code"]) == ("test", "test")
    assert window.panel.note_label.isVisible() and "test model" in window.panel.note_label.text()
    assert [box.text() for box in window.panel.class_boxes] == ["gland", "lesion"]
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    window.view.hovered.emit(*INSIDE)
    assert "grey 255   gland 1.00" in window.pixel_label.text()


def test_the_model_panel_names_test_time_flips_only_when_the_model_has_them(window: MainWindow) -> None:
    assert "Test-time flips" not in form_texts(window.panel.model_form)  # the tiny model: none
    contract = dataclasses.replace(window.segmenter.contract, flips="both")
    window.panel.set_model(contract, Path("flipped.onnx"), None, "")
    assert form_texts(window.panel.model_form)["Test-time flips"] == "both: 4 network passes per frame, averaged"


def test_frame_without_model(qtbot, frame_png: Path, errors: list[str], tmp_path: Path) -> None:
    window = MainWindow(settings=AppSettings(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    assert window.open_frame(frame_png)
    assert not window.worker.busy and window.view.has_image()
    assert "No model loaded" in window.statusBar().currentMessage()
    assert window.panel.class_boxes == [] and errors == []


# Command line


def run_app(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TRUS_APP_LOG_DIR": str(APP_LOG_DIR)}
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_screenshot(frame_png: Path, model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "shot.png"
    result = run_app(frame_png, "--model", model_path, "--screenshot", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (800, 1280, 3)


@pytest.mark.parametrize("problem", ["model without contract", "missing model", "bad frame"])
def test_cli_errors(frame_png: Path, model_path: Path, tmp_path: Path, problem: str) -> None:
    model, frame = model_path, frame_png
    if problem == "model without contract":
        model = write_threshold_model(tmp_path / "bare.onnx", with_contract=False)
    elif problem == "missing model":
        model = tmp_path / "absent.onnx"
    else:
        frame = tmp_path / "broken.png"
        frame.write_bytes(b"not an image")
    out = tmp_path / "shot.png"
    result = run_app(frame, "--model", model, "--screenshot", out)
    named = frame.name if problem == "bad frame" else model.name
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and named in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_app_imports_no_torch() -> None:
    code = ("import app.main_window, app.__main__, sys; "
            "assert not any(m.startswith(('torch', 'segmentation_models_pytorch', 'dvc')) for m in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# Calibration: the source shown for each frame, and the manual calibration by two clicks and a distance

CLICKS = ((10.0, 10.0), (70.0, 40.0))  # frame px: 67.08 px apart


def click_frame_points(qtbot, window: MainWindow, points) -> None:
    for x, y in points:
        qtbot.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton,
                         pos=window.view.mapFromScene(QPointF(x, y)))


@dataclass
class DistanceDialog:
    """The stubbed distance dialog: it gives the next of ``answers`` ((mm, accepted) pairs) and records its labels."""

    answers: list[tuple[float, bool]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@pytest.fixture
def dialog(monkeypatch: pytest.MonkeyPatch) -> DistanceDialog:
    stub = DistanceDialog()

    def get_double(parent, title, label, *rest):
        stub.labels.append(label)
        return stub.answers.pop(0)

    monkeypatch.setattr(QInputDialog, "getDouble", get_double)
    return stub


def test_two_clicks_and_a_distance_calibrate_the_frame(qtbot, window: MainWindow, frame_png: Path,
                                                       dialog: DistanceDialog) -> None:
    dialog.answers.append((20.0, True))
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    assert window.session.calibration.source == "none" and window.session.areas()[GLAND].mm2 is None
    window.calibrate_action.trigger()
    assert window.view.picking and window.statusBar().currentMessage() == "Calibrate: click one end (Esc cancels)."
    click_frame_points(qtbot, window, CLICKS)
    assert not window.view.picking
    assert len(dialog.labels) == 1 and "px long. Its true length, in mm:" in dialog.labels[0]
    calibration = window.session.calibration
    assert calibration.source == "manual"
    # Clicks land on whole screen pixels: at the fitted zoom that is within a fraction of a frame pixel.
    assert calibration.spacing_mm[0] == pytest.approx(20.0 / 67.08, rel=0.01) == calibration.spacing_mm[1]
    assert form_texts(window.panel.frame_form)["Pixel spacing"].endswith("from a manual calibration (--spacing-mm, "
                                                                         "or two points and their distance in the app)")
    gland = window.session.areas()[GLAND]
    assert gland.mm2 == pytest.approx(gland.pixels * calibration.spacing_mm[0] ** 2)
    assert window.panel.area_labels[GLAND].text().endswith(f"({gland.pixels:,} px)")
    assert "Calibrated: " in window.statusBar().currentMessage()


@pytest.mark.parametrize("how", ["escape", "dialog cancelled"])
def test_a_cancelled_calibration_changes_nothing(qtbot, window: MainWindow, frame_png: Path,
                                                 dialog: DistanceDialog, how: str) -> None:
    dialog.answers.append((20.0, False))
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    before = window.session.calibration
    window.calibrate_action.trigger()
    if how == "escape":
        click_frame_points(qtbot, window, CLICKS[:1])
        qtbot.keyClick(window.view, Qt.Key.Key_Escape)
    else:
        click_frame_points(qtbot, window, CLICKS)
    assert not window.view.picking
    assert window.session.calibration == before
    assert window.statusBar().currentMessage() == "Calibrate: cancelled."
    assert len(dialog.labels) == (0 if how == "escape" else 1)  # Esc before the second click: no dialog


def test_calibrate_is_enabled_once_a_frame_is_open(qtbot, window: MainWindow, frame_png: Path) -> None:
    assert not window.calibrate_action.isEnabled()
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    assert window.calibrate_action.isEnabled()


@pytest.mark.parametrize(
    "start, end, distance_mm, message",
    [((5.0, 5.0), (5.5, 5.5), 10.0, "0.7 px apart"), ((0.0, 0.0), (30.0, 40.0), 0.0, "the distance must be")],
)
def test_session_refuses_a_bad_manual_calibration(session: Session, start, end, distance_mm, message) -> None:
    before = session.calibration
    with pytest.raises(ValueError, match=message):
        session.calibrate_manually(start, end, distance_mm)
    assert session.calibration == before


def test_session_manual_calibration_replaces_the_chain(session: Session) -> None:
    calibration = session.calibrate_manually((0.0, 0.0), (30.0, 40.0), 10.0)
    assert calibration.spacing_mm == pytest.approx((0.2, 0.2)) and calibration.note == "two points 50.0 px apart are 10 mm"
    assert session.areas()[GLAND].mm2 == pytest.approx(session.areas()[GLAND].pixels * 0.04)


# Measuring: automatic calipers, the plane, dragging, adding and deleting calipers


def test_calipers_follow_the_plane_and_the_panel_shows_them(qtbot, window: MainWindow, frame_png: Path) -> None:
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    # case01.png names no plane and the test model has no plane output: unknown, both extents
    assert [c.name for c in window.session.calipers] == ["largest extent", "perpendicular"]
    box = window.panel.measure_box
    assert box.plane_label.text() == "Plane: Unknown (unknown: choose it)"
    box.plane_box.setCurrentIndex(1)
    box.plane_box.activated.emit(1)  # as a user's choice does
    assert window.session.user_plane == "transverse"
    width, height = window.session.calipers
    assert (width.name, height.name) == ("width", "height")
    # a 30 x 20 px rectangle (pixel centres 29 x 19 apart): its largest extent is the diagonal
    assert width.length_px == pytest.approx(math.hypot(29, 19), abs=1.5) and height.length_px < width.length_px
    assert box.plane_label.text() == "Plane: Transverse (set by you)"
    assert "width" in box.calipers_label.text() and f"{width.length_px:.1f} px" in box.calipers_label.text()
    assert window.measuring.layer.line_item(0).line().length() == pytest.approx(width.length_px)


def test_dragging_an_end_edits_the_caliper_and_a_new_threshold_keeps_the_edit(qtbot, window: MainWindow,
                                                                            frame_png: Path) -> None:
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    window.session.set_plane("transverse")
    window.measuring.refresh()
    end = window.measuring.layer.end_item(0, 1)
    start_xy, before_xy = window.session.calipers[0].start_xy, window.session.calipers[0].end_xy
    viewport = window.view.viewport()
    grab = window.view.mapFromScene(end.pos())
    drop = window.view.mapFromScene(QPointF(end.pos().x() + 5, end.pos().y() + 4))
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, grab)
    QTest.mouseMove(viewport, drop)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, drop)
    edited = window.session.calipers[0]
    assert not edited.automatic and edited.start_xy == start_xy
    assert edited.end_xy == pytest.approx((end.pos().x(), end.pos().y()))
    assert edited.end_xy[0] - before_xy[0] == pytest.approx(5, abs=1) and edited.end_xy[1] - before_xy[1] == \
        pytest.approx(4, abs=1)  # dragged 5 px right, 4 px down (screen pixels are whole: within 1 frame px)
    window.panel.threshold_slider.setValue(30)
    names = [(c.name, c.automatic) for c in window.session.calipers]
    assert names == [("height", True), ("width", False)]  # the new mask's height; the edited width kept
    assert "edited" in window.panel.measure_box.calipers_label.text()


def test_add_and_delete_a_caliper(qtbot, window: MainWindow, frame_png: Path) -> None:
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    before = len(window.session.calipers)
    window.add_caliper_action.trigger()
    click_frame_points(qtbot, window, ((5.0, 5.0), (5.0, 45.0)))
    added = window.session.calipers[-1]
    assert (added.name, added.automatic) == ("caliper 1", False)
    assert added.length_px == pytest.approx(40, abs=1.0)
    assert window.statusBar().currentMessage() == f"Added {added.text(None)}."
    assert not window.delete_caliper_action.trigger() and len(window.session.calipers) == before + 1
    assert window.statusBar().currentMessage() == "Select a caliper first: click its line."
    window.measuring.layer.line_item(before).setSelected(True)
    window.delete_caliper_action.trigger()
    assert len(window.session.calipers) == before and "caliper 1" not in window.panel.measure_box.calipers_label.text()


# Editing: brush, eraser and fill on real widgets, with undo and redo


def drag(window: MainWindow, points) -> None:
    """A left-button drag through frame points on the view."""
    viewport = window.view.viewport()
    screen = [window.view.mapFromScene(QPointF(x, y)) for x, y in points]
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, screen[0])
    for point in screen[1:]:
        QTest.mouseMove(viewport, point)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, screen[-1])


def test_brush_eraser_undo_redo_and_reset(qtbot, window: MainWindow, frame_png: Path) -> None:
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    model = window.session.class_mask(GLAND)
    edit = window.panel.edit_box
    assert edit.state_label.text() == "Masks: the model's" and not window.undo_action.isEnabled()
    window.tool_actions["brush"].trigger()
    edit.radius_box.setValue(2)
    drag(window, [(5.0, 5.0), (15.0, 5.0), (15.0, 10.0)])  # outside the gland, top left
    painted = window.session.class_mask(GLAND)
    assert painted[5, 5:16].all() and painted[5:11, 15].all() and (painted & ~model).sum() > 30
    assert (painted | ~model).all()  # nothing of the model's gland lost
    gland = window.session.areas()[GLAND]
    assert gland.pixels == int(painted.sum()) and window.panel.area_labels[GLAND].text() == f"{gland.pixels:,} px"
    assert edit.state_label.text() == "Masks: edited by you" and window.undo_action.isEnabled()
    window.tool_actions["eraser"].trigger()
    drag(window, [(40.0, 25.0)])  # a hole in the middle of the gland
    assert not window.session.class_mask(GLAND)[25, 40]
    assert window.editing.undo_stack.count() == 2
    window.undo_action.trigger()
    assert np.array_equal(window.session.class_mask(GLAND), painted)
    window.undo_action.trigger()
    assert np.array_equal(window.session.class_mask(GLAND), model)
    window.redo_action.trigger()
    assert np.array_equal(window.session.class_mask(GLAND), painted)
    window.panel.threshold_slider.setValue(90)  # edited masks are the user's: the threshold leaves them
    assert np.array_equal(window.session.class_mask(GLAND), painted)
    window.reset_action.trigger()
    assert window.session.edited is None and edit.state_label.text() == "Masks: the model's"
    window.undo_action.trigger()  # the reset is one step too
    assert np.array_equal(window.session.class_mask(GLAND), painted)


def test_fill_and_a_refused_fill(qtbot, window: MainWindow, frame_png: Path) -> None:
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    window.tool_actions["eraser"].trigger()
    window.panel.edit_box.radius_box.setValue(3)
    drag(window, [(40.0, 25.0)])  # a closed hole inside the gland
    holed = window.session.class_mask(GLAND)
    assert not holed[25, 40]
    window.tool_actions["fill"].trigger()
    drag(window, [(40.0, 25.0)])
    assert window.session.class_mask(GLAND)[25, 40]
    assert window.session.class_mask(GLAND).sum() > holed.sum()
    drag(window, [(5.0, 5.0)])  # background that reaches the border: no closed outline
    assert window.statusBar().currentMessage().startswith("Fill: the outline around that point is not closed")
    assert window.editing.undo_stack.count() == 2


def test_edits_move_the_automatic_calipers_and_a_new_frame_starts_clean(qtbot, window: MainWindow, frame_png: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    window.session.set_plane("transverse")
    before = window.session.calipers[0].length_px
    window.tool_actions["brush"].trigger()
    window.panel.edit_box.radius_box.setValue(3)
    drag(window, [(55.0, 25.0), (75.0, 25.0)])  # the gland grows 20 px to the right
    assert window.session.calipers[0].length_px > before + 10
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda parent, title, text, *args: asked.append(text) or QMessageBox.StandardButton.Discard)
    window.open_frame(frame_png)  # the edit is unsaved: the user is asked, and gives it up
    wait_segmented(qtbot, window)
    assert asked == ["Save the work on this case before closing it?"]
    assert window.session.edited is None and window.editing.undo_stack.count() == 0
    assert window.panel.edit_box.state_label.text() == "Masks: the model's"


# Review flags


def test_the_review_flag_shows_with_its_reason(qtbot, window: MainWindow, frame_png: Path, tmp_path: Path) -> None:
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    assert window.session.review_reason() is None
    assert window.panel.measure_box.review_label.text() == "Review: not flagged"
    black = tmp_path / "black.png"
    cv2.imwrite(str(black), np.zeros((HEIGHT, WIDTH), np.uint8))  # the test model finds no gland on it
    window.open_frame(black)
    wait_segmented(qtbot, window)
    assert window.session.review_reason() == "no gland found"
    assert window.panel.measure_box.review_label.text() == "⚠ Review this frame: no gland found"


# Settings that persist


def test_settings_persist_between_windows(qtbot, model_path: Path, frame_png: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QMessageBox, "question", lambda *args: QMessageBox.StandardButton.Discard)  # on closing
    settings_file = tmp_path / "persisted.ini"
    first = MainWindow(settings=AppSettings(settings_file))
    qtbot.addWidget(first)
    first.open_frame(frame_png)
    first.panel.opacity_slider.setValue(60)
    first.set_tick_interval(5.0)
    first.settings.sync()
    second = MainWindow(settings=AppSettings(settings_file))
    qtbot.addWidget(second)
    assert second.session.opacity == pytest.approx(0.6) and second.panel.opacity_slider.value() == 60
    assert second.settings.tick_mm == 5.0 and second.settings.last_folder == frame_png.parent
    assert second._start_dir() == str(frame_png.parent)


def test_a_new_tick_interval_recalibrates_the_open_frame(qtbot, window: MainWindow, tmp_path: Path) -> None:
    gray = np.zeros((400, 600), np.uint8)
    cv2.circle(gray, (260, 200), 150, 120, -1)  # the fan
    for row in range(20, 380, 40):
        cv2.line(gray, (520, row), (531, row), 220, 1)  # a tick every 40 px
    path = tmp_path / "ruled.png"
    cv2.imwrite(str(path), gray)
    window.open_frame(path)
    wait_segmented(qtbot, window)
    assert window.session.calibration.spacing_mm == pytest.approx((0.25, 0.25))  # 10 mm per 40 px
    window.set_tick_interval(5.0)
    assert window.session.calibration.spacing_mm == pytest.approx((0.125, 0.125))
    assert form_texts(window.panel.frame_form)["Pixel spacing"] == \
        "0.1250 × 0.1250 mm, from the depth scale burned into the frame"
    with pytest.raises(ValueError, match="tick interval must be 0.5-100.0 mm"):
        window.settings.tick_mm = 0.0


@pytest.mark.parametrize("stored", ["abc", "-1", "nan", "7"])
def test_unreadable_stored_values_read_as_defaults(tmp_path: Path, stored: str) -> None:
    path = tmp_path / "bad.ini"
    path.write_text(f"[General]\nopacity={stored}\ntick_mm={stored}\nlast_folder=/no/such/folder\n")
    settings = AppSettings(path)
    assert settings.opacity == 0.35  # 7 is no opacity either
    assert settings.tick_mm == (7.0 if stored == "7" else 10.0)
    assert settings.last_folder is None
