"""Edit › Preferences…: the PSA density threshold, the depth scale's tick interval, the class colours and
the model's precision (a new precision reloads the model).

The dialog only collects values (:meth:`PreferencesDialog.preferences`); OK hands them to
:func:`apply_preferences`, which persists them (:class:`app.settings.AppSettings`) and redraws the
view and the Volume box at once. Cancel changes nothing, not even colours picked meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QColorDialog, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QLabel, QPushButton, QVBoxLayout, QWidget)

from app.panel import swatch
from app.settings import PSA_THRESHOLD_RANGE, TICK_RANGE_MM, Rgb, to_hex
from pipeline.inference.measure import colour_for
from pipeline.inference.runtime import PRECISIONS

PRECISION_LABELS = {"auto": "Automatic (INT8 where this CPU runs it fast)", "int8": "INT8", "fp32": "fp32"}

if TYPE_CHECKING:
    from app.main_window import MainWindow


@dataclass(frozen=True)
class Preferences:
    """What the dialog's OK applies.

    Attributes:
        psa_threshold: PSA density threshold, ng/mL/cc, in :data:`app.settings.PSA_THRESHOLD_RANGE` (0.01-1.0).
        tick_mm: mm between the depth scale's longer ticks, in :data:`app.settings.TICK_RANGE_MM` (0.5-100).
        colours: the overlay colour (RGB, 0-255 each) per class name of the loaded model.
        precision: which model runs, one of :data:`pipeline.inference.runtime.PRECISIONS`.
    """

    psa_threshold: float
    tick_mm: float
    colours: dict[str, Rgb]
    precision: str = "auto"


def _spin_box(low: float, high: float, value: float, step: float, suffix: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(2)
    box.setSingleStep(step)
    box.setSuffix(suffix)
    box.setValue(value)
    return box


class PreferencesDialog(QDialog):
    """A form: PSA density threshold, depth-scale tick interval, one colour button per class.

    Attributes:
        psa_box: the PSA density threshold, ng/mL/cc (0.01-1.0).
        tick_box: mm between the depth scale's longer ticks (0.5-100).
        colour_buttons: per class name, the button that opens a colour chooser.
        precision_box: which model runs (the items' data: :data:`pipeline.inference.runtime.PRECISIONS`).
    """

    def __init__(self, classes: Sequence[str], colours: Sequence[Rgb], psa_threshold: float, tick_mm: float,
                 parent: QWidget | None = None, precision: str = "auto") -> None:
        """Shows the current values.

        Args:
            classes: the loaded model's class names (none: no colour buttons).
            colours: their current overlay colours (RGB, 0-255 each), in the same order.
            psa_threshold: the current PSA density threshold, ng/mL/cc.
            tick_mm: the current tick interval, mm.
            precision: the current model precision setting.
        """
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self._colours: dict[str, Rgb] = dict(zip(classes, colours))
        self._defaults: dict[str, Rgb] = {name: colour_for(index) for index, name in enumerate(classes)}
        form = QFormLayout()
        self.psa_box = _spin_box(*PSA_THRESHOLD_RANGE, psa_threshold, 0.01, " ng/mL/cc")
        self.psa_box.setToolTip("A PSA density at or above this is flagged in the Volume box and the report")
        form.addRow("PSA density threshold", self.psa_box)
        self.tick_box = _spin_box(*TICK_RANGE_MM, tick_mm, 0.5, " mm")
        self.tick_box.setToolTip("mm between the longer ticks of the depth scale burned into the frames")
        form.addRow("Depth scale tick interval", self.tick_box)
        self.precision_box = QComboBox()
        for value in PRECISIONS:
            self.precision_box.addItem(PRECISION_LABELS[value], value)
        self.precision_box.setCurrentIndex(PRECISIONS.index(precision))
        self.precision_box.setToolTip("INT8 is about 2 to 5 times faster than fp32 on CPUs with VNNI or AVX2; "
                                      "it exists only when its accuracy gate passed at export, and never runs "
                                      "where this CPU would compute it inexactly")
        form.addRow("Model precision", self.precision_box)
        self.colour_buttons: dict[str, QPushButton] = {}
        for name in classes:
            button = QPushButton()
            button.clicked.connect(lambda _checked=False, name=name: self.choose_colour(name))
            self.colour_buttons[name] = button
            form.addRow(f"Colour of {name}", button)
            self._show_colour(name)
        if classes:
            self.default_colours_button = QPushButton("Default colours")
            self.default_colours_button.clicked.connect(self.restore_default_colours)
            form.addRow("", self.default_colours_button)
        else:
            form.addRow(QLabel("Open a model to choose its class colours."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def colour(self, name: str) -> Rgb:
        """The colour (RGB, 0-255 each) class ``name`` has in the dialog now."""
        return self._colours[name]

    def set_colour(self, name: str, rgb: Rgb) -> None:
        """Gives class ``name`` colour ``rgb`` (0-255 each) in the dialog; nothing changes until OK."""
        to_hex(rgb)  # raises ValueError on a bad colour
        self._colours[name] = (int(rgb[0]), int(rgb[1]), int(rgb[2]))
        self._show_colour(name)

    def choose_colour(self, name: str) -> None:
        """Asks for class ``name``'s colour (:class:`QColorDialog`); cancelling it keeps the colour."""
        chosen = QColorDialog.getColor(QColor(*self._colours[name]), self, f"Overlay colour of {name}")
        if chosen.isValid():
            self.set_colour(name, (chosen.red(), chosen.green(), chosen.blue()))

    def restore_default_colours(self) -> None:
        """Gives every class its default colour (:func:`pipeline.inference.measure.colour_for`)."""
        for name, rgb in self._defaults.items():
            self.set_colour(name, rgb)

    def preferences(self) -> Preferences:
        """The values as the dialog shows them."""
        return Preferences(self.psa_box.value(), self.tick_box.value(), dict(self._colours),
                           self.precision_box.currentData())

    def _show_colour(self, name: str) -> None:
        button, rgb = self.colour_buttons[name], self._colours[name]
        button.setIcon(swatch(rgb))
        button.setText(to_hex(rgb))
        button.setToolTip(f"Choose the overlay colour of {name}")


def apply_preferences(window: MainWindow, chosen: Preferences) -> None:
    """Persists ``chosen`` and shows it at once: the overlay, the class swatches, the Volume box's PSA flag,
    and the open frame's calibration when the tick interval changed.

    A colour equal to the class's default is forgotten rather than stored, so the class keeps following the
    default. A new PSA density threshold un-accepts accepted measurements (the report states the threshold).

    Raises:
        ValueError: a value outside its range (the dialog's spin boxes never give one).
    """
    settings, session = window.settings, window.session
    settings.psa_threshold = chosen.psa_threshold
    session.psa_threshold = chosen.psa_threshold
    for index, name in enumerate(session.classes):
        rgb = chosen.colours.get(name)
        if rgb is None:
            continue
        if rgb == colour_for(index):
            settings.set_colour(name, None)
            session.colours.pop(name, None)
        else:
            settings.set_colour(name, rgb)
            session.colours[name] = rgb
    window.panel.set_colours(session.class_colours())
    if chosen.tick_mm != settings.tick_mm:
        window.set_tick_interval(chosen.tick_mm)  # persists it and recalibrates the open frame
    if chosen.precision != settings.precision:
        settings.precision = chosen.precision
        window.reload_model()  # reports its own error; the window keeps the model it has
    settings.sync()
    window.refresh()
    window.say("Preferences saved.")


def open_preferences(window: MainWindow) -> PreferencesDialog:
    """Opens the dialog over ``window`` (window-modal, returns at once); OK applies and persists its values
    (:func:`apply_preferences`), Cancel changes nothing. Returns the dialog (deleted when closed)."""
    session = window.session
    dialog = PreferencesDialog(session.classes, session.class_colours(), session.psa_threshold,
                               window.settings.tick_mm, window, window.settings.precision)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.accepted.connect(lambda: apply_preferences(window, dialog.preferences()))
    dialog.open()
    return dialog
