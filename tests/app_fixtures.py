"""Fixtures shared by the app's tests (registered in tests/conftest.py): the tiny model, the error dialogs
shown, and windows that are closed with their unsaved case work discarded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ONNX model: the gland is the bright pixels (see tests/tiny_models.py)."""
    from tests.tiny_models import write_threshold_model

    return write_threshold_model(tmp_path_factory.mktemp("model") / "model.onnx")


@pytest.fixture
def errors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts of the error dialogs the app showed, in order (no dialog opens)."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a: shown.append(text))
    return shown


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    """The app's settings file for this test: each test starts from the defaults."""
    return tmp_path / "settings.ini"


@pytest.fixture
def make_window(qtbot, model_path: Path, settings_file: Path, errors: list[str],
                monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., object]]:
    """Opens a window on ``settings_file`` (a new AppSettings each time: another run of the app), 900 x 600,
    the model loaded unless told otherwise; every window is closed afterwards with its unsaved work discarded."""
    from PySide6.QtWidgets import QMessageBox

    from app.main_window import MainWindow
    from app.settings import AppSettings

    made: list[MainWindow] = []

    def make(load_model: bool = True) -> MainWindow:
        window = MainWindow(settings=AppSettings(settings_file))
        window.resize(900, 600)
        if load_model:
            window.load_model(model_path)
        window.show()
        qtbot.waitExposed(window)
        made.append(window)
        return window

    yield make
    with monkeypatch.context() as patch:  # closed here, not by qtbot.addWidget (which closes before fixtures end)
        patch.setattr(QMessageBox, "question", lambda *args: QMessageBox.StandardButton.Discard)
        for window in made:
            window.close()
            window.deleteLater()


@pytest.fixture
def window(make_window: Callable[..., object]) -> object:
    """A window with the tiny model loaded, on default settings."""
    return make_window()


def measure_case_volume(qtbot, window, folder: Path, psa: float) -> None:
    """Opens a two-frame case, makes frame 1 transverse and frame 2 sagittal through the plane box, uses each for
    the volume with the Volume box's button, and enters the PSA (ng/mL)."""
    from PySide6.QtCore import Qt

    assert window.open_frame(folder)
    for number, plane_index in ((0, 1), (1, 2)):  # the plane box: automatic, Transverse, Sagittal
        window.cases.go_to(number)
        qtbot.waitUntil(lambda: not window.worker.busy and window.session.segmentation is not None, timeout=5000)
        box = window.panel.measure_box.plane_box
        box.setCurrentIndex(plane_index)
        box.activated.emit(plane_index)
        qtbot.mouseClick(window.panel.volume_box.use_button, Qt.MouseButton.LeftButton)
    window.panel.volume_box.psa_box.setValue(psa)
