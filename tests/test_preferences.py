"""Persisted settings (threshold, class colours, PSA density threshold) and Edit › Preferences… (pytest-qt, offscreen).

Every window reads and writes an INI file in the test's tmp_path; two windows on the same file
stand for two runs of the app. The Preferences dialog is driven through its widgets and closed
with accept()/reject(), never exec().
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QColorDialog

from app.main_window import MainWindow
from app.preferences import PreferencesDialog
from app.settings import AppSettings, parse_hex, to_hex
from pipeline.inference.gland_size import PSA_DENSITY_THRESHOLD
from pipeline.inference.measure import colour_for
from tests.app_fixtures import measure_case_volume
from tests.test_app import GLAND, INSIDE, LESION, OUTSIDE, blend, rect_frame, screen_rgb, wait_segmented
from tests.test_measure_cli import write_ultrasound_dicom

CHOSEN = (10, 20, 200)  # a gland colour no default has
SPACING_MM = 0.5


@pytest.fixture
def frame_png(tmp_path: Path) -> Path:
    path = tmp_path / "case01.png"
    cv2.imwrite(str(path), rect_frame())
    return path


def open_dialog(window: MainWindow) -> PreferencesDialog:
    """Edit › Preferences… as the user opens it."""
    window.preferences_action.trigger()
    shown = [dialog for dialog in window.findChildren(PreferencesDialog) if dialog.isVisible()]
    assert len(shown) == 1  # a closed one is only waiting for deletion
    return shown[0]


def pick_colour(monkeypatch: pytest.MonkeyPatch, dialog: PreferencesDialog, name: str,
                rgb: tuple[int, int, int]) -> None:
    """Clicks class ``name``'s colour button and answers the colour chooser with ``rgb``."""
    monkeypatch.setattr(QColorDialog, "getColor", lambda *args, **kwargs: QColor(*rgb))
    dialog.colour_buttons[name].click()
    assert dialog.colour_buttons[name].text() == to_hex(rgb)


def swatch_rgb(window: MainWindow, index: int) -> tuple[int, int, int]:
    colour = window.panel.class_boxes[index].icon().pixmap(14, 14).toImage().pixelColor(7, 7)
    return colour.red(), colour.green(), colour.blue()


# The settings on their own


def test_defaults_when_nothing_is_stored(settings_file: Path) -> None:
    settings = AppSettings(settings_file)
    assert settings.threshold is None  # the model's own
    assert settings.psa_threshold == PSA_DENSITY_THRESHOLD == 0.15
    assert settings.colours == {}


def test_hex_colours() -> None:
    assert to_hex((0, 220, 90)) == "#00dc5a" and parse_hex("#00DC5A") == (0, 220, 90)
    for bad in ("red", "#12345", "#gggggg", "00dc5a", "", None, 7):
        assert parse_hex(bad) is None
    with pytest.raises(ValueError):
        to_hex((0, 256, 0))


def test_values_round_trip_and_out_of_range_values_are_refused(settings_file: Path) -> None:
    first = AppSettings(settings_file)
    first.threshold, first.psa_threshold = 0.7, 0.3
    first.set_colour("gland", CHOSEN)
    first.set_colour("odd/name %", (1, 2, 3))  # a "/" must not open an INI group
    first.sync()
    second = AppSettings(settings_file)
    assert (second.threshold, second.psa_threshold) == (0.7, 0.3)
    assert second.colours == {"gland": CHOSEN, "odd/name %": (1, 2, 3)}
    second.set_colour("gland", None)
    assert second.colours == {"odd/name %": (1, 2, 3)}
    for name, value in (("threshold", 0.0), ("threshold", 1.0), ("psa_threshold", 0.0), ("psa_threshold", 1.5)):
        with pytest.raises(ValueError):
            setattr(second, name, value)


@pytest.mark.parametrize("key, stored, read", [
    ("threshold", "abc", lambda s: s.threshold is None),
    ("threshold", "1.5", lambda s: s.threshold is None),
    ("threshold", "0", lambda s: s.threshold is None),
    ("threshold", "nan", lambda s: s.threshold is None),
    ("psa_threshold", "abc", lambda s: s.psa_threshold == PSA_DENSITY_THRESHOLD),
    ("psa_threshold", "0", lambda s: s.psa_threshold == PSA_DENSITY_THRESHOLD),
    ("psa_threshold", "5", lambda s: s.psa_threshold == PSA_DENSITY_THRESHOLD),
    ("psa_threshold", "inf", lambda s: s.psa_threshold == PSA_DENSITY_THRESHOLD),
    ("psa_threshold", "-0.2", lambda s: s.psa_threshold == PSA_DENSITY_THRESHOLD),
    ("colours/gland", "red", lambda s: s.colours == {}),
    ("colours/gland", "#12345", lambda s: s.colours == {}),
    ("colours/gland", "#12345g", lambda s: s.colours == {}),
    ("colours/gland", "", lambda s: s.colours == {}),
])
def test_unreadable_values_read_as_defaults(make_window: Callable[..., MainWindow], settings_file: Path,
                                            key: str, stored: str, read: Callable[[AppSettings], bool]) -> None:
    raw = QSettings(str(settings_file), QSettings.Format.IniFormat)
    raw.setValue(key, stored)
    raw.sync()
    assert read(AppSettings(settings_file))
    window = make_window()  # and the window starts with the defaults
    assert window.session.threshold == 0.5 and window.panel.threshold_slider.value() == 50
    assert window.session.psa_threshold == PSA_DENSITY_THRESHOLD
    assert window.session.class_colours() == [colour_for(GLAND), colour_for(LESION)]


# Persisted across runs


def test_the_threshold_persists(qtbot, make_window: Callable[..., MainWindow], frame_png: Path) -> None:
    first = make_window()
    first.open_frame(frame_png)
    wait_segmented(qtbot, first)
    first.panel.threshold_slider.setValue(70)
    first.settings.sync()
    second = make_window(load_model=False)
    assert second.settings.threshold == pytest.approx(0.7)
    second.load_model(first.segmenter.path)  # the user's threshold, not the model's 0.5
    assert second.session.threshold == pytest.approx(0.7) and second.panel.threshold_slider.value() == 70
    assert second.session.default_threshold == 0.5
    second.open_frame(frame_png)
    wait_segmented(qtbot, second)
    assert second.session.areas()[GLAND].pixels == first.session.areas()[GLAND].pixels


def test_the_class_colours_persist_and_colour_the_view_swatch_and_saved_overlay(
        qtbot, make_window: Callable[..., MainWindow], frame_png: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_window()
    first.open_frame(frame_png)
    wait_segmented(qtbot, first)
    assert screen_rgb(first, *INSIDE) == pytest.approx(blend(255, colour_for(GLAND), 0.35), abs=2)
    dialog = open_dialog(first)
    pick_colour(monkeypatch, dialog, "gland", CHOSEN)
    dialog.accept()
    assert screen_rgb(first, *INSIDE) == pytest.approx(blend(255, CHOSEN, 0.35), abs=2)  # at once
    assert screen_rgb(first, *OUTSIDE) == pytest.approx(blend(0, colour_for(LESION), 0.35), abs=2)
    assert swatch_rgb(first, GLAND) == CHOSEN
    (tmp_path / "out").mkdir()
    _, overlay_png = first.save_results(tmp_path / "out")
    x, y = INSIDE
    assert tuple(cv2.imread(str(overlay_png))[y, x][::-1]) == blend(255, CHOSEN, 0.35)
    assert "gland=#0a14c8" in Path(first.settings.file).read_text()
    second = make_window()
    assert second.session.class_colours() == [CHOSEN, colour_for(LESION)] and swatch_rgb(second, GLAND) == CHOSEN
    second.open_frame(frame_png)
    wait_segmented(qtbot, second)
    assert screen_rgb(second, *INSIDE) == pytest.approx(blend(255, CHOSEN, 0.35), abs=2)


def test_default_colours_are_forgotten_not_stored(make_window: Callable[..., MainWindow],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window()
    dialog = open_dialog(window)
    pick_colour(monkeypatch, dialog, "gland", CHOSEN)
    dialog.accept()
    assert window.settings.colours == {"gland": CHOSEN}
    dialog = open_dialog(window)
    dialog.default_colours_button.click()
    dialog.accept()
    assert window.settings.colours == {} and window.session.class_colours()[GLAND] == colour_for(GLAND)


def test_the_psa_threshold_and_tick_interval_persist(make_window: Callable[..., MainWindow]) -> None:
    first = make_window()
    dialog = open_dialog(first)
    dialog.psa_box.setValue(0.25)
    dialog.tick_box.setValue(5.0)
    dialog.accept()
    assert first.session.psa_threshold == 0.25 and first.settings.tick_mm == 5.0
    second = make_window(load_model=False)
    assert second.session.psa_threshold == 0.25 and second.settings.tick_mm == 5.0
    dialog = open_dialog(second)  # the dialog shows the persisted values, and no colours without a model
    assert (dialog.psa_box.value(), dialog.tick_box.value(), dialog.colour_buttons) == (0.25, 5.0, {})
    dialog.reject()


# The dialog


def test_cancel_changes_nothing(qtbot, window: MainWindow, frame_png: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window.open_frame(frame_png)
    wait_segmented(qtbot, window)
    window.settings.sync()
    before = (screen_rgb(window, *INSIDE), Path(window.settings.file).read_text(), window.settings.tick_mm)
    dialog = open_dialog(window)
    assert dialog.psa_box.value() == PSA_DENSITY_THRESHOLD and dialog.colour("gland") == colour_for(GLAND)
    pick_colour(monkeypatch, dialog, "gland", CHOSEN)
    dialog.psa_box.setValue(0.5)
    dialog.tick_box.setValue(5.0)
    dialog.reject()
    window.settings.sync()
    assert (screen_rgb(window, *INSIDE), Path(window.settings.file).read_text(), window.settings.tick_mm) == before
    assert window.session.psa_threshold == PSA_DENSITY_THRESHOLD and window.session.colours == {}
    assert swatch_rgb(window, GLAND) == colour_for(GLAND)


def test_a_cancelled_colour_chooser_keeps_the_colour(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    dialog = open_dialog(window)
    monkeypatch.setattr(QColorDialog, "getColor", lambda *args, **kwargs: QColor())  # invalid: cancelled
    dialog.colour_buttons["gland"].click()
    assert dialog.colour("gland") == colour_for(GLAND)
    dialog.reject()


def measure_case(qtbot, window: MainWindow, folder: Path, psa: float) -> float:
    """Opens a two-frame case, uses each frame for the volume, enters the PSA; returns the PSA density."""
    measure_case_volume(qtbot, window, folder, psa)
    figures = window.session.volume()
    assert figures is not None and figures.psa is not None
    return figures.psa.density


def test_a_new_psa_threshold_flags_the_density_at_once(qtbot, window: MainWindow, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    for name in ("1-transverse.dcm", "2-sagittal.dcm"):
        write_ultrasound_dicom(folder / name, rect_frame(), (SPACING_MM, SPACING_MM))
    density = measure_case(qtbot, window, folder, psa=0.25)
    label = window.panel.volume_box.density_label
    assert 0.15 < density < 0.3 and "above the threshold" in label.text()  # flagged at 0.15
    qtbot.mouseClick(window.panel.volume_box.accept_button, Qt.MouseButton.LeftButton)
    assert window.session.accepted
    dialog = open_dialog(window)
    dialog.psa_box.setValue(0.3)
    dialog.accept()
    assert label.text() == f"{density:.3f} ng/mL/cc < 0.3" and label.styleSheet() == ""
    assert not window.session.accepted  # the accepted figures stated the old threshold
    dialog = open_dialog(window)
    dialog.psa_box.setValue(0.1)
    dialog.accept()
    assert label.text() == f"{density:.3f} ng/mL/cc ≥ 0.1: above the threshold"


# The model's precision


def test_precision_setting_reads_unknown_values_as_auto(settings_file: Path) -> None:
    settings = AppSettings(settings_file)
    assert settings.precision == "auto"
    settings.precision = "fp32"
    assert AppSettings(settings_file).precision == "fp32"
    with pytest.raises(ValueError, match="precision must be one of auto, int8, fp32"):
        settings.precision = "fp16"
    raw = QSettings(str(settings_file), QSettings.Format.IniFormat)
    raw.setValue("precision", "bf16")
    raw.sync()
    assert AppSettings(settings_file).precision == "auto"


def test_choosing_a_precision_reloads_the_model_and_the_card_shows_it(
        qtbot, make_window: Callable[..., MainWindow], model_path: Path, tmp_path: Path, errors: list[str]) -> None:
    from tests.test_runtime import quantised_beside
    from tests.test_app import form_texts

    folder = tmp_path / "deployed"
    folder.mkdir()
    model = folder / model_path.name
    model.write_bytes(model_path.read_bytes())
    quantised_beside(model)
    window = make_window(load_model=False)
    window.settings.precision = "int8"
    window.load_model(model)
    texts = form_texts(window.panel.model_form)
    assert (window.segmenter.precision, texts["File"], texts["Runs"]) == ("int8", "model.int8.onnx",
                                                                        "INT8: chosen in the settings")
    assert texts["INT8 gate"] == "masks agree with fp32: gland Dice 0.999; largest test metric drop 0.000 on ? frames"
    dialog = open_dialog(window)
    assert dialog.precision_box.currentData() == "int8"
    dialog.precision_box.setCurrentIndex(dialog.precision_box.findData("fp32"))
    dialog.accept()
    texts = form_texts(window.panel.model_form)
    assert (window.segmenter.precision, texts["File"], texts["Runs"]) == ("fp32", "model.onnx",
                                                                        "fp32: chosen in the settings")
    assert "INT8 gate" not in texts
    assert AppSettings(window.settings.file).precision == "fp32" and errors == []


def test_a_precision_that_cannot_be_met_keeps_the_loaded_model(
        qtbot, make_window: Callable[..., MainWindow], model_path: Path, errors: list[str]) -> None:
    window = make_window()
    dialog = open_dialog(window)
    dialog.precision_box.setCurrentIndex(dialog.precision_box.findData("int8"))
    dialog.accept()
    assert window.segmenter is not None and window.segmenter.path == model_path and window.segmenter.precision == "fp32"
    assert len(errors) == 1 and "no INT8 model beside it" in errors[0]
