"""The case workflow on real widgets (pytest-qt, offscreen): a folder of frames or a multi-frame DICOM as a
case, moving between its frames, the work kept per frame and saved in the case file, the volume and PSA
density, their acceptance, and the unsaved-work prompt.

Frames are 96 x 64 px with bright rectangles, which the tests' threshold model (tests/tiny_models.py)
segments as the gland. Expected figures are computed here by hand from the caliper ends the test sets.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.case_file import FOLDER_CASE_NAME
from app.main_window import MainWindow
from app.settings import AppSettings
from app.volume_panel import ACCEPTED_STYLE, FLAG_STYLE, NOT_ACCEPTED_STYLE
from pipeline.inference.measure import colour_for
from tests.test_measure_cli import write_ultrasound_dicom
from tests.test_app import (
    GLAND,
    LESION,
    blend,
    click_frame_points,
    drag,
    screen_rgb,
    wait_segmented,
)

HEIGHT, WIDTH = 64, 96
RECT_X0 = (4, 26, 48, 70)  # frame k's 20 x 20 px rectangle starts here: no two frames' rectangles overlap
RECT_Y0, RECT_SIZE = 22, 20
SAVE, DISCARD, CANCEL = (QMessageBox.StandardButton.Save, QMessageBox.StandardButton.Discard,
                         QMessageBox.StandardButton.Cancel)
YES, NO = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
PLANE_INDEX = {None: 0, "transverse": 1, "sagittal": 2}  # the Measurements box's plane choices


def rect_at(x0: int, y0: int = RECT_Y0, size: int = RECT_SIZE) -> np.ndarray:
    """A black 96 x 64 frame with a white square ``size`` px wide at (x0, y0)."""
    gray = np.zeros((HEIGHT, WIDTH), np.uint8)
    gray[y0:y0 + size, x0:x0 + size] = 255
    return gray


def inside(x0: int) -> tuple[int, int]:
    """A pixel of the square at x0, clear of its calipers (its diagonals) and of their labels (right of the square)."""
    return x0 + 3, RECT_Y0 + RECT_SIZE // 2


def big_rect() -> np.ndarray:
    """A black 96 x 64 frame with a white 60 x 40 px rectangle in the middle (a gland for the volume)."""
    gray = np.zeros((HEIGHT, WIDTH), np.uint8)
    gray[12:52, 18:78] = 255
    return gray


def write_pngs(folder: Path, frames: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, gray in frames.items():
        assert cv2.imwrite(str(folder / name), gray)
    return folder


def gray_of(image: QImage) -> np.ndarray:
    """A QImage's pixels as (H, W) uint8 grey."""
    image = image.convertToFormat(QImage.Format.Format_Grayscale8)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, :image.width()].copy()


def thumbnails(window: MainWindow) -> list[np.ndarray]:
    listed = window.frame_list
    return [gray_of(listed.item(row).icon().pixmap(QSize(96, 96)).toImage()) for row in range(listed.count())]


def list_texts(window: MainWindow) -> list[str]:
    return [window.frame_list.item(row).text() for row in range(window.frame_list.count())]


def open_case(qtbot, window: MainWindow, path: Path) -> None:
    assert window.open_frame(path)
    wait_segmented(qtbot, window)


def go_to(qtbot, window: MainWindow, number: int) -> None:
    """Picks frame ``number`` in the frame list with a click, as the user does."""
    listed = window.frame_list
    qtbot.mouseClick(listed.viewport(), Qt.MouseButton.LeftButton,
                     pos=listed.visualItemRect(listed.item(number)).center())
    assert window.session.frame_number == number
    wait_segmented(qtbot, window)


def choose_plane(window: MainWindow, plane: str | None) -> None:
    box = window.panel.measure_box.plane_box
    box.setCurrentIndex(PLANE_INDEX[plane])
    box.activated.emit(PLANE_INDEX[plane])  # as the user's choice does


def caliper_index(window: MainWindow, name: str) -> int:
    return [caliper.name for caliper in window.session.calipers].index(name)


def place_caliper(window: MainWindow, name: str, ends: tuple[tuple[float, float], tuple[float, float]]) -> None:
    """Puts the ends of the caliper ``name`` where a drag would leave them, exactly (the handles' own moves)."""
    index = caliper_index(window, name)
    for end, (x, y) in enumerate(ends):
        window.measuring.layer.end_item(index, end).setPos(QPointF(x, y))


def drag_caliper_end(window: MainWindow, name: str, end: int, dx: float, dy: float) -> None:
    """A real mouse drag of one end of the caliper ``name`` by (dx, dy) frame px."""
    index = caliper_index(window, name)
    before = window.session.calipers[index]
    item = window.measuring.layer.end_item(index, end)
    viewport = window.view.viewport()
    grab = window.view.mapFromScene(item.pos())
    drop = window.view.mapFromScene(QPointF(item.pos().x() + dx, item.pos().y() + dy))
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, grab)
    QTest.mouseMove(viewport, drop)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, drop)
    after = window.session.calipers[index]
    moved_from, moved_to = (before.start_xy, after.start_xy) if end == 0 else (before.end_xy, after.end_xy)
    assert after.name == name and not after.automatic  # screen pixels are whole: within 1 frame px
    assert (moved_to[0] - moved_from[0], moved_to[1] - moved_from[1]) == pytest.approx((dx, dy), abs=1.0)


def brush(window: MainWindow, points: list[tuple[float, float]], radius: int = 2) -> None:
    window.tool_actions["brush"].trigger()
    window.panel.edit_box.radius_box.setValue(radius)
    drag(window, points)
    window.tool_actions["off"].trigger()


def use_for_volume(qtbot, window: MainWindow) -> None:
    qtbot.mouseClick(window.panel.volume_box.use_button, Qt.MouseButton.LeftButton)


def accept(qtbot, window: MainWindow) -> None:
    qtbot.mouseClick(window.panel.volume_box.accept_button, Qt.MouseButton.LeftButton)


@pytest.fixture
def save_dialog(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """File › Save case asks where: the user takes the folder it offers. Records what it offered."""
    offered: list[str] = []

    def get_save_file_name(parent, title, start, *args):
        offered.append(start)
        return start, args[0] if args else ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", get_save_file_name)
    return offered


@pytest.fixture
def png_folder(tmp_path: Path) -> Path:
    """Three PNG frames a.png, b.png, c.png, each with its square elsewhere."""
    return write_pngs(tmp_path / "exam", {name: rect_at(x0) for name, x0 in zip(("a.png", "b.png", "c.png"), RECT_X0)})


# 1. A folder of frames is a case: the frame list, its thumbnails, PgDown/PgUp


def test_a_folder_of_frames_is_a_case_with_a_thumbnail_per_frame(qtbot, window: MainWindow, png_folder: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(png_folder))
    window.open_case_action.trigger()
    wait_segmented(qtbot, window)
    assert list_texts(window) == ["1. a.png\nplane ?", "2. b.png", "3. c.png"]  # the open frame: no plane yet
    assert window.session.frame_number == 0 and window.frame_list.currentRow() == 0
    assert np.array_equal(window.session.frame.gray, rect_at(RECT_X0[0]))
    qtbot.waitUntil(lambda: window.frame_list.thumbnails_done, timeout=5000)
    for number, shown in enumerate(thumbnails(window)):  # 96 px wide already: the thumbnail is the frame itself
        assert shown.shape == (HEIGHT, WIDTH)
        assert np.array_equal(shown, rect_at(RECT_X0[number])), number
    for action in (window.next_action, window.previous_action, window.save_case_action, window.save_case_as_action):
        assert action.isEnabled()


def test_page_down_and_page_up_move_between_frames(qtbot, window: MainWindow, png_folder: Path) -> None:
    open_case(qtbot, window, png_folder)
    window.activateWindow()
    qtbot.waitActive(window)

    def at(number: int) -> None:
        wait_segmented(qtbot, window)
        assert window.session.frame_number == number and window.frame_list.currentRow() == number
        assert np.array_equal(window.session.frame.gray, rect_at(RECT_X0[number]))
        assert window.session.frame_path == png_folder / f"{'abc'[number]}.png"
        assert window.windowTitle().startswith("abc"[number] + ".png")
        x, y = inside(RECT_X0[number])
        assert window.session.masks()[GLAND][y, x]  # this frame's own segmentation
        assert screen_rgb(window, x, y) == pytest.approx(blend(255, colour_for(GLAND), 0.35), abs=2)

    at(0)
    window.next_action.trigger()
    at(1)
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    at(2)
    qtbot.keyClick(window, Qt.Key.Key_PageDown)  # the last frame: stays
    at(2)
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    at(1)
    window.previous_action.trigger()
    at(0)
    window.previous_action.trigger()  # the first frame: stays
    at(0)
    go_to(qtbot, window, 2)  # a click in the list
    at(2)


def test_page_down_on_the_last_frame_changes_nothing(qtbot, window: MainWindow, png_folder: Path) -> None:
    open_case(qtbot, window, png_folder)
    go_to(qtbot, window, 2)
    brush(window, [(85.0, 8.0), (92.0, 8.0)])
    window.view.zoom_by(2.0)
    zoom, masks = window.view.zoom, window.session.masks().copy()
    window.next_action.trigger()
    assert window.session.frame_number == 2 and np.array_equal(window.session.masks(), masks)
    assert window.editing.undo_stack.count() == 1 and window.undo_action.isEnabled()  # the stroke can be undone
    assert window.view.zoom == zoom


def test_a_frame_that_cannot_be_read_is_reported_and_skipped(qtbot, window: MainWindow, png_folder: Path,
                                                             errors: list[str]) -> None:
    (png_folder / "b.png").write_bytes(b"not an image")
    open_case(qtbot, window, png_folder)
    qtbot.waitUntil(lambda: window.frame_list.thumbnails_done, timeout=5000)
    assert window.frame_list.item(1).icon().isNull() and not window.frame_list.item(2).icon().isNull()
    listed = window.frame_list
    qtbot.mouseClick(listed.viewport(), Qt.MouseButton.LeftButton, pos=listed.visualItemRect(listed.item(1)).center())
    assert len(errors) == 1 and "b.png" in errors[0] and "\n" not in errors[0]
    assert window.session.frame_number == 0 and listed.currentRow() == 0  # the list shows the frame that is open
    window.next_action.trigger()  # reported again, and on to the next frame that reads
    wait_segmented(qtbot, window)
    assert len(errors) == 2 and "b.png" in errors[1]
    assert window.session.frame_number == 2 and listed.currentRow() == 2
    assert np.array_equal(window.session.frame.gray, rect_at(RECT_X0[2]))
    window.previous_action.trigger()
    wait_segmented(qtbot, window)
    assert len(errors) == 3 and window.session.frame_number == 0 and listed.currentRow() == 0


def test_the_work_on_a_frame_is_still_there_after_visiting_another(qtbot, window: MainWindow,
                                                                   png_folder: Path) -> None:
    open_case(qtbot, window, png_folder)
    window.activateWindow()
    qtbot.waitActive(window)
    choose_plane(window, "transverse")
    window.add_caliper_action.trigger()
    click_frame_points(qtbot, window, ((5.0, 55.0), (60.0, 55.0)))
    brush(window, [(80.0, 8.0), (90.0, 8.0)])  # a blob of gland far from the square
    session = window.session
    calipers, masks = list(session.calipers), session.masks().copy()
    assert [c.name for c in calipers] == ["width", "height", "caliper 1"]
    assert calipers[2].length_px == pytest.approx(55, abs=1.0) and masks[GLAND][8, 85]
    assert list_texts(window)[0] == "1. a.png\ntransverse · edited"

    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    wait_segmented(qtbot, window)
    assert session.frame_number == 1
    assert session.user_plane is None and session.edited is None and not session.masks()[GLAND][8, 85]
    assert [(c.name, c.automatic) for c in session.calipers] == [("largest extent", True), ("perpendicular", True)]
    assert window.panel.measure_box.plane_label.text() == "Plane: Unknown (unknown: choose it)"
    assert window.panel.edit_box.state_label.text() == "Masks: the model's"

    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    wait_segmented(qtbot, window)
    assert session.frame_number == 0 and session.user_plane == "transverse"
    assert session.calipers == calipers
    assert np.array_equal(session.masks(), masks) and np.array_equal(session.edited, masks)
    assert window.panel.measure_box.plane_label.text() == "Plane: Transverse (set by you)"
    assert "caliper 1" in window.panel.measure_box.calipers_label.text()
    assert window.panel.edit_box.state_label.text() == "Masks: edited by you"
    assert window.panel.edit_box.reset_button.isEnabled()
    assert list_texts(window)[0] == "1. a.png\ntransverse · edited"
    shown = screen_rgb(window, 85, 8)  # the painted blob is drawn: no longer the plain background's colour
    assert shown == pytest.approx(tuple(session.overlay()[8, 85]), abs=2)
    assert shown != pytest.approx(blend(0, colour_for(LESION), 0.35), abs=2)


# 2. A multi-frame DICOM is a case of its cine frames


def test_a_multi_frame_dicom_is_a_case_of_its_frames(qtbot, window: MainWindow, tmp_path: Path) -> None:
    cine = np.stack([rect_at(x0) for x0 in RECT_X0])
    cine[np.arange(4), 2, 2] = (10, 20, 30, 40)  # and a pixel that tells the frames apart
    path = write_ultrasound_dicom(tmp_path / "loop.dcm", cine, (0.3, 0.25))
    open_case(qtbot, window, path)
    assert [text.split("\n")[0] for text in list_texts(window)] == [f"{n}. loop.dcm · frame {n}/4"
                                                                     for n in range(1, 5)]
    qtbot.waitUntil(lambda: window.frame_list.thumbnails_done, timeout=5000)
    assert all(np.array_equal(shown, frame) for shown, frame in zip(thumbnails(window), cine, strict=True))
    for number in (0, 1, 2, 3):
        go_to(qtbot, window, number)
        session = window.session
        assert np.array_equal(session.frame.gray, cine[number]), number
        assert session.calibration.source == "dicom" and session.calibration.spacing_mm == pytest.approx((0.3, 0.25))
        assert window.windowTitle().startswith(f"loop.dcm · frame {number + 1}/4")
        assert session.frame_stem == f"loop_f{number + 1:03d}"
        for other, x0 in enumerate(RECT_X0):  # the gland is this frame's square, not frame 0's
            x, y = inside(x0)
            assert session.masks()[GLAND][y, x] == (other == number)
            grey = 255 if other == number else 0
            colour = colour_for(GLAND if other == number else LESION)
            assert screen_rgb(window, x, y) == pytest.approx(blend(grey, colour, 0.35), abs=2), (number, other)


# The volume case: frame 1 transverse, frame 2 sagittal, frame 3 not used; calipers put at known ends

DICOM_SPACING = (0.5, 0.4)  # mm per px along x and y
MANUAL_CALIBRATION = ((0.0, 0.0), (30.0, 40.0), 10.0)  # two points 50 px apart are 10 mm: 0.2 mm/px
WIDTH_ENDS = ((20.0, 30.0), (80.0, 30.0))  # 60 px along x
HEIGHT_ENDS = ((50.0, 5.0), (50.0, 55.0))  # 50 px along y
LENGTH_ENDS = ((10.0, 20.0), (70.0, 52.0))  # 60 px along x and 32 px along y
EXPECTED_MM = {  # (width, height, length) by hand from the ends above
    "dicom": (60 * 0.5, 50 * 0.4, math.hypot(60 * 0.5, 32 * 0.4)),  # 30, 20, 32.62 mm
    "manual": (60 * 0.2, 50 * 0.2, math.hypot(60 * 0.2, 32 * 0.2)),  # 12, 10, 13.6 mm
}


def volume_folder(root: Path, calibration: str) -> Path:
    """Three frames with a 60 x 40 px gland: DICOMs at DICOM_SPACING, or PNGs with no spacing (calibrated by hand)."""
    folder = root / "volume-case"
    if calibration == "manual":
        return write_pngs(folder, {f"{n}.png": big_rect() for n in (1, 2, 3)})
    folder.mkdir(parents=True)
    for n in (1, 2, 3):
        write_ultrasound_dicom(folder / f"{n}.dcm", big_rect(), DICOM_SPACING)
    return folder


def measure_volume(qtbot, window: MainWindow, folder: Path, calibration: str = "dicom") -> None:
    """Opens the case; frame 1 becomes transverse, frame 2 sagittal, their calipers are put at the known ends and
    each frame is used for the volume."""
    open_case(qtbot, window, folder)
    for number, plane, calipers in ((0, "transverse", {"width": WIDTH_ENDS, "height": HEIGHT_ENDS}),
                                    (1, "sagittal", {"length": LENGTH_ENDS})):
        go_to(qtbot, window, number)
        if calibration == "manual":
            window.session.calibrate_manually(*MANUAL_CALIBRATION)
            window.refresh()
        choose_plane(window, plane)
        for name, ends in calipers.items():
            place_caliper(window, name, ends)
        use_for_volume(qtbot, window)


# 4. Volume and PSA density, against figures computed by hand


@pytest.mark.parametrize("calibration, psa, flagged", [("dicom", 1.0, False), ("dicom", 2.0, True),
                                                       ("manual", 0.1, False), ("manual", 0.2, True)])
def test_the_volume_box_shows_the_ellipsoid_volume_and_the_psa_density(qtbot, window: MainWindow, tmp_path: Path,
                                                                       errors: list[str], calibration: str,
                                                                       psa: float, flagged: bool) -> None:
    width, height, length = EXPECTED_MM[calibration]
    volume_ml = math.pi / 6 * length * width * height / 1000  # mm^3 -> mL
    density = psa / volume_ml
    assert (density >= 0.15) is flagged  # the table has both sides of the threshold
    box = window.panel.volume_box
    folder = volume_folder(tmp_path, calibration)
    open_case(qtbot, window, folder)
    assert box.status_label.text() == \
        "Not accepted: choose a transverse frame for the volume (Measurements › Use for the volume)"
    assert box.volume_label.text() == "—" and not box.accept_button.isEnabled()

    measure_volume(qtbot, window, folder, calibration)
    assert box.frames_label.text() == "From transverse frame 1 and sagittal frame 2"
    assert [box.width_label.text(), box.height_label.text(), box.length_label.text()] == \
        [f"{width:.1f} mm", f"{height:.1f} mm", f"{length:.1f} mm"]
    assert box.volume_label.text() == f"{volume_ml:.1f} mL"
    assert box.density_label.text() == "—" and box.psa_box.text() == "not entered"
    assert box.accept_button.isEnabled() and box.status_label.text() == "Not accepted"
    figures = window.session.volume()
    assert (figures.width_mm, figures.height_mm, figures.length_mm) == pytest.approx((width, height, length), rel=1e-12)
    assert figures.volume_ml == pytest.approx(volume_ml, rel=1e-12)

    box.psa_box.setValue(psa)
    assert window.session.case.psa_ng_per_ml == psa
    assert window.session.volume().psa.density == pytest.approx(density, rel=1e-12)
    assert box.density_label.text() == f"{density:.3f} ng/mL/cc" + (" ≥ 0.15: above the threshold" if flagged
                                                                   else " < 0.15")
    assert box.density_label.styleSheet() == (FLAG_STYLE if flagged else "")
    suffix = "png" if calibration == "manual" else "dcm"
    assert list_texts(window)[:2] == [f"1. 1.{suffix}\ntransverse · volume (W, H)",
                                      f"2. 2.{suffix}\nsagittal · volume (L)"]
    box.psa_box.setValue(0.0)  # cleared: "not entered", no density
    assert window.session.case.psa_ng_per_ml is None and box.density_label.text() == "—"
    assert errors == []


def test_the_volume_says_what_is_missing(qtbot, window: MainWindow, tmp_path: Path, errors: list[str]) -> None:
    folder = volume_folder(tmp_path, "manual")  # PNGs: no pixel spacing
    open_case(qtbot, window, folder)
    box = window.panel.volume_box
    use_for_volume(qtbot, window)  # no plane yet
    assert errors == ["the frame's plane is unknown: choose transverse or sagittal first"]
    choose_plane(window, "transverse")
    use_for_volume(qtbot, window)
    assert box.status_label.text() == "Not accepted: the transverse frame has no pixel spacing: calibrate it " \
                                      "(Tools › Calibrate…)"
    window.session.calibrate_manually(*MANUAL_CALIBRATION)
    window.refresh()
    assert box.status_label.text() == \
        "Not accepted: choose a sagittal frame for the volume (Measurements › Use for the volume)"
    assert box.width_label.text() != "—" and box.length_label.text() == "—" and box.volume_label.text() == "—"
    accept(qtbot, window)  # the button is disabled: nothing happens
    assert window.session.case.accepted_at is None and len(errors) == 1


# 5. Acceptance, and what clears it


def add_caliper(qtbot, window: MainWindow) -> None:
    window.add_caliper_action.trigger()
    click_frame_points(qtbot, window, ((5.0, 60.0), (40.0, 60.0)))


def delete_caliper(window: MainWindow, name: str) -> None:
    window.measuring.layer.line_item(caliper_index(window, name)).setSelected(True)
    window.delete_caliper_action.trigger()


ACCEPTANCE_EDITS = [  # (what, the frame edited, the edit, whether it clears the acceptance)
    ("width caliper dragged", 0, lambda qtbot, window: drag_caliper_end(window, "width", 1, 4.0, 3.0), True),
    ("length caliper dragged", 1, lambda qtbot, window: drag_caliper_end(window, "length", 0, -3.0, 0.0), True),
    ("sagittal frame brushed", 1, lambda qtbot, window: brush(window, [(85.0, 30.0), (92.0, 30.0)]), True),
    ("transverse frame erased", 0, lambda qtbot, window: (window.tool_actions["eraser"].trigger(),
                                                          drag(window, [(40.0, 30.0)])), True),
    ("transverse plane changed", 0, lambda qtbot, window: choose_plane(window, "sagittal"), True),
    ("caliper added on the transverse frame", 0, add_caliper, True),
    ("width caliper deleted", 0, lambda qtbot, window: delete_caliper(window, "width"), True),
    ("PSA changed", 1, lambda qtbot, window: window.panel.volume_box.psa_box.setValue(3.0), True),
    ("third frame brushed", 2, lambda qtbot, window: brush(window, [(85.0, 30.0), (92.0, 30.0)]), False),
    ("third frame's caliper dragged", 2,
     lambda qtbot, window: drag_caliper_end(window, "largest extent", 1, 4.0, 3.0), False),
    ("third frame's plane set", 2, lambda qtbot, window: choose_plane(window, "transverse"), False),
    ("caliper added on the third frame", 2, add_caliper, False),
]


@pytest.mark.parametrize("frame, edit, clears", [row[1:] for row in ACCEPTANCE_EDITS],
                         ids=[row[0] for row in ACCEPTANCE_EDITS])
def test_an_edit_of_what_the_volume_uses_clears_the_acceptance(qtbot, window: MainWindow, tmp_path: Path,
                                                               frame: int, edit, clears: bool) -> None:
    box, session = window.panel.volume_box, window.session
    measure_volume(qtbot, window, volume_folder(tmp_path, "dicom"))
    box.psa_box.setValue(2.0)
    accept(qtbot, window)
    accepted_at = session.case.accepted_at
    assert accepted_at is not None and session.accepted
    assert box.status_label.text() == f"Accepted {accepted_at}" and box.status_label.styleSheet() == ACCEPTED_STYLE
    assert not box.accept_button.isEnabled() and window.cases.unsaved
    volume = box.volume_label.text()
    go_to(qtbot, window, frame)
    assert session.accepted  # moving between frames is no edit

    edit(qtbot, window)
    wait_segmented(qtbot, window)
    assert session.accepted is not clears
    if clears:  # and the box shows the figures as they now are
        assert session.case.accepted_at is None and box.status_label.styleSheet() == NOT_ACCEPTED_STYLE
        figures = session.volume()
        if figures.volume_ml is None and "transverse" not in session.case.volume_frames:
            # the transverse frame became sagittal: it no longer gives the width and height
            assert session.case.volume_frames == {"sagittal": 1}
            assert box.status_label.text() == "Not accepted: choose a transverse frame for the volume (Measurements " \
                                              "› Use for the volume)"
        elif figures.volume_ml is None:
            assert box.status_label.text() == "Not accepted: the transverse frame has no width caliper (no gland " \
                                              "found; add one named by the plane)"
        if figures.volume_ml is None:
            assert box.volume_label.text() == box.width_label.text() == "—" and not box.accept_button.isEnabled()
            return
        assert box.status_label.text() == "Not accepted" and box.accept_button.isEnabled()
        assert box.volume_label.text() == f"{figures.volume_ml:.1f} mL"
        accept(qtbot, window)  # accepted again, as they now are
        assert session.accepted and box.status_label.text() == f"Accepted {session.case.accepted_at}"
    else:
        assert session.case.accepted_at == accepted_at and box.volume_label.text() == volume
        assert box.status_label.text() == f"Accepted {accepted_at}" and not box.accept_button.isEnabled()


# 3. Save case, and a fresh window shows the same work


def test_a_saved_case_reopens_with_its_work(qtbot, window: MainWindow, model_path: Path, tmp_path: Path,
                                            save_dialog: list[str], errors: list[str]) -> None:
    folder = volume_folder(tmp_path, "dicom")
    measure_volume(qtbot, window, folder)  # frame 2 (sagittal) is open
    add_caliper(qtbot, window)
    go_to(qtbot, window, 0)
    brush(window, [(85.0, 8.0), (92.0, 8.0)])
    window.panel.volume_box.psa_box.setValue(3.5)
    go_to(qtbot, window, 2)  # work on a frame not used for the volume is kept too
    choose_plane(window, "sagittal")
    go_to(qtbot, window, 0)
    accept(qtbot, window)
    session = window.session
    work = {number: session.work_on(number) for number in (0, 1, 2)}
    accepted_at = session.case.accepted_at
    assert work[0].edited is not None and work[0].edited[GLAND][8, 88] and window.cases.unsaved

    window.save_case_action.trigger()
    case_file = folder / FOLDER_CASE_NAME
    assert save_dialog == [str(case_file)]  # the first save asks where, offering the frames' folder
    assert case_file.is_file() and not window.cases.unsaved and window.cases.case_path == case_file
    assert window.statusBar().currentMessage() == f"Case saved: {FOLDER_CASE_NAME}."
    saved = json.loads(case_file.read_text())
    assert saved["schema"] == "trus-case/1" and saved["source"] == "."
    assert [saved["frames"][key]["file"] for key in ("0", "1", "2")] == ["1.dcm", "2.dcm", "3.dcm"]
    window.save_case_action.trigger()  # again: to the same file, without asking
    assert save_dialog == [str(case_file)]

    second = MainWindow(settings=AppSettings(tmp_path / "second.ini"))
    qtbot.addWidget(second)
    second.load_model(model_path)
    second.show()
    open_case(qtbot, second, folder)
    reopened, box = second.session, second.panel.volume_box
    assert second.cases.case_path == case_file and not second.cases.unsaved
    assert reopened.frame_number == 0  # the first frame used for the volume
    assert reopened.case.volume_frames == {"transverse": 0, "sagittal": 1}
    assert reopened.case.psa_ng_per_ml == 3.5 and box.psa_box.value() == 3.5
    assert reopened.case.accepted_at == accepted_at and reopened.accepted
    assert box.status_label.text() == f"Accepted {accepted_at}" and not box.accept_button.isEnabled()
    assert box.frames_label.text() == "From transverse frame 1 and sagittal frame 2"
    assert box.volume_label.text() == window.panel.volume_box.volume_label.text()
    assert second.panel.edit_box.state_label.text() == "Masks: edited by you"
    for number in (0, 1, 2):
        go_to(qtbot, second, number)
        assert reopened.user_plane == work[number].user_plane, number
        assert reopened.calipers == work[number].calipers, number  # names, ends (frame px) and automatic flags
        if work[number].edited is None:
            assert reopened.edited is None
        else:
            assert np.array_equal(reopened.edited, work[number].edited) and reopened.edited[GLAND][8, 88]
    assert [c.name for c in work[1].calipers] == ["length", "caliper 1"]
    assert dict(zip(("start_xy", "end_xy"), LENGTH_ENDS)) == {
        "start_xy": work[1].calipers[0].start_xy, "end_xy": work[1].calipers[0].end_xy}
    assert [work[number].user_plane for number in (0, 1, 2)] == ["transverse", "sagittal", "sagittal"]
    assert reopened.accepted and not second.cases.unsaved  # looking at the frames changes nothing
    assert errors == []


def test_the_work_on_cine_frames_is_saved_beside_the_dicom_and_reopens(qtbot, window: MainWindow, tmp_path: Path,
                                                                       save_dialog: list[str]) -> None:
    cine = np.stack([rect_at(x0) for x0 in RECT_X0])
    path = write_ultrasound_dicom(tmp_path / "loop.dcm", cine, (0.3, 0.25))
    open_case(qtbot, window, path)
    go_to(qtbot, window, 1)
    choose_plane(window, "sagittal")
    window.session.calibrate_manually(*MANUAL_CALIBRATION)  # this frame's own calibration: 0.2 mm/px
    go_to(qtbot, window, 3)
    brush(window, [(5.0, 5.0), (12.0, 5.0)])
    edited = window.session.edited.copy()
    window.save_case_action.trigger()
    case_file = tmp_path / "loop.dcm.trus-case.json"
    assert save_dialog == [str(case_file)] and case_file.is_file()
    saved = json.loads(case_file.read_text())["frames"]
    assert {key: (value["file"], value["frame"]) for key, value in saved.items()} == {
        "1": ("loop.dcm", 1), "3": ("loop.dcm", 3)}  # frame 1 was only looked at: nothing to keep

    open_case(qtbot, window, path)  # read again from the files: a new case
    assert window.cases.case_path == case_file and window.session.frame_number == 0
    assert window.session.calibration.source == "dicom"
    go_to(qtbot, window, 1)
    assert window.session.user_plane == "sagittal"
    assert window.session.calibration.source == "manual" and window.session.calibration.spacing_mm == (0.2, 0.2)
    go_to(qtbot, window, 2)
    assert window.session.user_plane is None and window.session.calibration.spacing_mm == pytest.approx((0.3, 0.25))
    go_to(qtbot, window, 3)
    assert np.array_equal(window.session.edited, edited) and window.session.masks()[GLAND][5, 8]
    assert not window.cases.unsaved


def test_save_case_as_adds_the_suffix_and_the_case_file_reopens_the_case(qtbot, window: MainWindow, png_folder: Path,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    open_case(qtbot, window, png_folder)
    choose_plane(window, "sagittal")
    elsewhere = tmp_path / "cases"
    elsewhere.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args: (str(elsewhere / "exam 7"), ""))
    window.save_case_as_action.trigger()
    case_file = elsewhere / "exam 7.trus-case.json"
    assert case_file.is_file() and not (png_folder / FOLDER_CASE_NAME).exists()
    assert json.loads(case_file.read_text())["frames"]["0"]["file"] == "../exam/a.png"
    window.session.set_plane(None)  # changed, then the case file is opened: asked, and given up
    monkeypatch.setattr(QMessageBox, "question", lambda *args: DISCARD)
    open_case(qtbot, window, case_file)
    assert window.session.case.source == png_folder and window.cases.case_path == case_file
    assert window.session.user_plane == "sagittal" and len(window.session.case.frames) == 3


# 3. Case files that cannot be used: refused with a one-line error naming the file; the open case stays


def assert_case_unchanged(window: MainWindow, case, folder: Path) -> None:
    assert window.session.case is case and window.session.frame_number == 0
    assert window.session.frame_path == folder / "a.png" and window.windowTitle().startswith("a.png")
    assert [text.split("\n")[0] for text in list_texts(window)] == ["1. a.png", "2. b.png", "3. c.png"]


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not a readable case file (Expecting property name enclosed in double quotes"),
    ("[1, 2, 3]", "not a case file (expected schema 'trus-case/1')"),
    (json.dumps({"schema": "trus-case/2", "frames": {}}), "not a case file (expected schema 'trus-case/1')"),
    (json.dumps({"schema": "something-else", "source": "."}), "not a case file (expected schema 'trus-case/1')"),
    (json.dumps({"schema": "trus-case/1", "source": ".", "frames": {"0": {"file": "x.png"}}}),
     "malformed case file (KeyError: 'frame')"),
    (json.dumps({"schema": "trus-case/1", "source": ".", "frames": {}, "volume_frames": {"oblique": 0}}),
     "malformed case file (ValueError: a plane is one of transverse, sagittal, got 'oblique')"),
])
@pytest.mark.parametrize("opened", ["folder", "case file"])
def test_an_unusable_case_file_is_refused_and_the_open_case_stays(qtbot, window: MainWindow, png_folder: Path,
                                                                  tmp_path: Path, errors: list[str], content: str,
                                                                  problem: str, opened: str) -> None:
    open_case(qtbot, window, png_folder)
    case = window.session.case
    other = write_pngs(tmp_path / "other", {"x.png": rect_at(10)})
    case_file = other / FOLDER_CASE_NAME
    case_file.write_text(content)
    assert not window.open_frame(other if opened == "folder" else case_file)
    assert len(errors) == 1 and "\n" not in errors[0]
    assert errors[0].startswith(f"{case_file}: {problem}")
    assert_case_unchanged(window, case, png_folder)
    assert case_file.read_text() == content  # never rewritten


def test_a_case_file_whose_frames_are_gone_is_refused_naming_them(qtbot, window: MainWindow, png_folder: Path,
                                                                  errors: list[str], save_dialog: list[str]) -> None:
    open_case(qtbot, window, png_folder)
    for number in (1, 2):
        go_to(qtbot, window, number)
        choose_plane(window, "transverse")
    go_to(qtbot, window, 0)
    assert window.cases.save() == png_folder / FOLDER_CASE_NAME
    case = window.session.case
    (png_folder / "b.png").unlink()
    (png_folder / "c.png").unlink()
    assert not window.open_frame(png_folder)
    assert errors == [f"{png_folder / FOLDER_CASE_NAME}: the case no longer has b.png frame 1, c.png frame 1"]
    assert window.session.case is case and window.session.frame_number == 0


def test_a_case_file_whose_frames_folder_is_gone_is_refused(qtbot, window: MainWindow, png_folder: Path,
                                                            tmp_path: Path, errors: list[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    open_case(qtbot, window, png_folder)
    choose_plane(window, "transverse")
    case_file = tmp_path / "kept" / "exam.trus-case.json"
    case_file.parent.mkdir()
    assert window.cases.save_as(case_file) == case_file
    other = write_pngs(tmp_path / "other", {"a.png": rect_at(10), "b.png": rect_at(30), "c.png": rect_at(50)})
    open_case(qtbot, window, other)  # saved: no question
    case = window.session.case
    png_folder.rename(tmp_path / "moved")
    assert not window.open_frame(case_file)
    assert errors == [f"{case_file}: its frames' {png_folder} no longer exists"]
    assert_case_unchanged(window, case, other)


@pytest.mark.parametrize("answer", [NO, YES])
def test_save_case_asks_before_replacing_a_file_it_did_not_write(qtbot, window: MainWindow, png_folder: Path,
                                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 answer) -> None:
    open_case(qtbot, window, png_folder)
    choose_plane(window, "transverse")
    foreign = tmp_path / "elsewhere" / "notes.trus-case.json"
    foreign.parent.mkdir()
    foreign.write_text("someone's notes, not a case")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args: (str(foreign), ""))
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *args: asked.append(text) or answer)
    window.save_case_action.trigger()  # not saved yet: Save case asks where
    assert asked == [f"notes.trus-case.json already exists in {foreign.parent}. Replace it?"]
    if answer == NO:
        assert foreign.read_text() == "someone's notes, not a case"
        assert window.statusBar().currentMessage() == "Case not saved: the file already exists."
        assert window.cases.unsaved and window.cases.case_path is None
        return
    assert json.loads(foreign.read_text())["frames"]["0"]["plane"] == "transverse"
    assert not window.cases.unsaved and window.cases.case_path == foreign
    choose_plane(window, "sagittal")
    window.save_case_action.trigger()  # the app's own case file now: replaced without asking
    assert len(asked) == 1 and json.loads(foreign.read_text())["frames"]["0"]["plane"] == "sagittal"


# 6. Unsaved work: asked before another case opens (and before the window closes)


@pytest.mark.parametrize("answer, file_dialog", [(CANCEL, None), (DISCARD, None), (SAVE, "accepted"),
                                                 (SAVE, "cancelled")])
def test_opening_another_case_with_unsaved_work_asks_first(qtbot, window: MainWindow, png_folder: Path,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           answer, file_dialog: str | None) -> None:
    open_case(qtbot, window, png_folder)
    case = window.session.case
    choose_plane(window, "transverse")
    asked: list[tuple] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *args: asked.append(args[1:]) or answer)
    offered: list[str] = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda parent, title, start, *args: (
        offered.append(start) or (start if file_dialog == "accepted" else ""), ""))
    other = write_pngs(tmp_path / "other", {"x.png": rect_at(10)})
    case_file = png_folder / FOLDER_CASE_NAME
    opened = window.open_frame(other)
    assert asked == [("Unsaved work", "Save the work on this case before closing it?", SAVE | DISCARD | CANCEL, SAVE)]
    assert offered == ([str(case_file)] if answer == SAVE else [])
    saved = answer == SAVE and file_dialog == "accepted"
    assert case_file.exists() == saved
    if saved:
        assert json.loads(case_file.read_text())["frames"]["0"]["plane"] == "transverse"
    assert opened == (answer == DISCARD or saved)
    if opened:
        wait_segmented(qtbot, window)
        assert window.session.case.source == other and list_texts(window) == ["1. x.png\nplane ?"]
        assert not window.cases.unsaved
    else:  # the case stays, with its work, still unsaved
        assert_case_unchanged(window, case, png_folder)
        assert window.session.user_plane == "transverse" and window.cases.unsaved


def test_work_given_up_for_a_case_that_does_not_open_is_still_unsaved(qtbot, window: MainWindow, png_folder: Path,
                                                                     tmp_path: Path, errors: list[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    open_case(qtbot, window, png_folder)
    choose_plane(window, "transverse")
    monkeypatch.setattr(QMessageBox, "question", lambda *args: DISCARD)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    assert not window.open_frame(broken)
    assert "broken.png" in errors[-1]
    assert window.session.case.source == png_folder and window.cases.unsaved  # closing will still ask


def test_a_saved_case_is_asked_about_again_after_a_new_edit(qtbot, window: MainWindow, png_folder: Path,
                                                            tmp_path: Path, save_dialog: list[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    open_case(qtbot, window, png_folder)
    choose_plane(window, "transverse")
    window.save_case_action.trigger()
    other = write_pngs(tmp_path / "other", {"x.png": rect_at(10)})
    go_to(qtbot, window, 1)  # looking at another frame is no change
    assert not window.cases.unsaved
    brush(window, [(85.0, 8.0), (92.0, 8.0)])
    assert window.cases.unsaved
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *args: asked.append(text) or SAVE)
    assert window.open_frame(other)
    assert asked == ["Save the work on this case before closing it?"]
    assert save_dialog == [str(png_folder / FOLDER_CASE_NAME)]  # the second save goes to the same file, unasked
    saved = json.loads((png_folder / FOLDER_CASE_NAME).read_text())["frames"]
    assert saved["0"]["plane"] == "transverse" and saved["1"]["edited"] is not None


def test_closing_the_window_with_unsaved_work_asks_and_cancel_keeps_it_open(qtbot, window: MainWindow,
                                                                            png_folder: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    open_case(qtbot, window, png_folder)
    choose_plane(window, "transverse")
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *args: asked.append(text) or CANCEL)
    assert not window.close()
    assert asked == ["Save the work on this case before closing it?"]
    assert window.isVisible() and window.cases.unsaved and window.session.user_plane == "transverse"


# 3. The case file names its frames by file: frames exported into the folder later move nothing


@pytest.mark.parametrize("added, transverse, sagittal", [("0.dcm", 1, 2), ("1b.dcm", 0, 2)])
def test_the_volume_frames_stay_with_their_files_when_frames_are_added(qtbot, window: MainWindow, model_path: Path,
                                                                       tmp_path: Path, save_dialog: list[str],
                                                                       added: str, transverse: int,
                                                                       sagittal: int) -> None:
    folder = volume_folder(tmp_path, "dicom")
    measure_volume(qtbot, window, folder)  # 1.dcm transverse, 2.dcm sagittal
    window.panel.volume_box.psa_box.setValue(2.0)
    accept(qtbot, window)
    figures = window.panel.volume_box.volume_label.text(), window.panel.volume_box.density_label.text()
    window.save_case_action.trigger()
    write_ultrasound_dicom(folder / added, rect_at(10), DICOM_SPACING)  # another frame exported into the folder later
    second = MainWindow(settings=AppSettings(tmp_path / "second.ini"))
    qtbot.addWidget(second)
    second.load_model(model_path)
    second.show()
    open_case(qtbot, second, folder)
    case, box = second.session.case, second.panel.volume_box
    assert [ref.path.name for ref in case.frames] == sorted(["1.dcm", "2.dcm", "3.dcm", added])
    assert case.volume_frames == {"transverse": transverse, "sagittal": sagittal}  # still 1.dcm and 2.dcm
    assert second.session.frame_number == transverse and second.session.user_plane == "transverse"
    assert box.frames_label.text() == f"From transverse frame {transverse + 1} and sagittal frame {sagittal + 1}"
    assert (box.volume_label.text(), box.density_label.text()) == figures and second.session.accepted


# Tags: the user's words for a frame, kept with the case


def tag(window: MainWindow, text: str) -> None:
    """Types ``text`` into the Measurements box's tag field and leaves it."""
    field = window.panel.measure_box.tags_edit
    field.setText(text)
    field.editingFinished.emit()


def test_tags_stay_with_their_frame_and_the_case_file(qtbot, window: MainWindow, make_window, png_folder: Path,
                                                     save_dialog: list[str], errors: list[str]) -> None:
    open_case(qtbot, window, png_folder)
    tag(window, " poor  view, Teaching ,POOR view,, ")
    assert window.session.tags == ("poor view", "Teaching") and window.cases.unsaved
    assert list_texts(window)[0] == "1. a.png\nplane ? · #poor view · #Teaching"
    go_to(qtbot, window, 1)
    assert window.panel.measure_box.tags_edit.text() == "" and window.session.tags == ()
    tag(window, "x" * 41)
    assert errors[-1] == f"Tags not changed: a tag may have at most 40 characters: {'x' * 40}…"
    assert window.session.tags == () and window.panel.measure_box.tags_edit.text() == ""
    go_to(qtbot, window, 0)
    assert window.panel.measure_box.tags_edit.text() == "poor view, Teaching"
    window.save_case_action.trigger()

    reopened = make_window()
    open_case(qtbot, reopened, png_folder)
    assert reopened.session.tags == ("poor view", "Teaching")
    assert reopened.panel.measure_box.tags_edit.text() == "poor view, Teaching"


@pytest.mark.parametrize("text, tags", [("", ()), ("a,b", ("a", "b")), (" a , A ,b", ("a", "b")),
                                        ("one  two", ("one two",)), (",,", ())])
def test_parse_tags(text: str, tags: tuple[str, ...]) -> None:
    from app.case import parse_tags
    assert parse_tags(text) == tags


# PySide6 6.12.0's Signal.emit() drops a reference to True on every call: after a few thousand signals (a mouse
# moving over the view emits one per move) the interpreter aborts ("bool_dealloc"). requirements.txt keeps it out;
# these tests catch a release with the same fault.


def test_emitting_a_signal_keeps_pythons_true() -> None:
    import sys

    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        fired = Signal()

    emitter = Emitter()
    before = sys.getrefcount(True)
    for _ in range(100):
        emitter.fired.emit()
    assert sys.getrefcount(True) > before - 50  # the fault takes 100 away

SLOT_ACTIONS = [
    ("class checkbox", lambda window: window.panel.class_boxes[GLAND].toggle()),
    ("tool buttons", lambda window: window.panel.edit_box.tool_buttons["brush"].click()),
    ("tags field", lambda window: window.panel.measure_box.tags_edit.editingFinished.emit()),
    ("PSA box", lambda window: window.panel.volume_box.psa_box.setValue(
        3.0 if window.panel.volume_box.psa_box.value() != 3.0 else 4.0)),
    ("frame list", lambda window: window.frame_list.frame_chosen.emit(0)),
    ("menu actions", lambda window: window.tool_actions["off"].trigger()),
    ("write report action", lambda window: window.report_action.trigger()),
    ("plane box", lambda window: window.panel.measure_box.plane_box.activated.emit(0)),
]


@pytest.mark.parametrize("act", [row[1] for row in SLOT_ACTIONS], ids=[row[0] for row in SLOT_ACTIONS])
def test_the_users_actions_keep_pythons_true(qtbot, window: MainWindow, png_folder: Path, act) -> None:
    import gc
    import sys

    open_case(qtbot, window, png_folder)
    for _ in range(5):  # caches and widgets made once are made before counting
        act(window)
    gc.collect()
    before = sys.getrefcount(True)
    for _ in range(300):
        act(window)
    gc.collect()
    assert sys.getrefcount(True) > before - 100  # a signal that drops True would take 300 away
