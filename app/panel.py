"""The side panel: model note, classes with their areas, display sliders, frame and model facts."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QGridLayout, QGroupBox, QLabel, QPushButton, QSlider,
                               QVBoxLayout, QWidget)

from pipeline.inference.contract import THRESHOLD_RANGE
from app.edit_panel import EditPanel
from app.measure_panel import MeasurePanel
from app.volume_panel import VolumePanel
from pipeline.imaging.calibration import SPACING_SOURCES, Calibration
from pipeline.imaging.frames import Frame
from pipeline.inference.contract import ModelContract
from pipeline.inference.flips import FLIPS
from pipeline.inference.measure import ClassArea, colour_for

PANEL_WIDTH = 330
NOTE_STYLE = ("background: #fff4c2; color: #4d3800; border: 1px solid #d9a400; border-radius: 4px;"
              " padding: 6px; font-weight: bold;")
METRIC_LABELS = {"dice": "Dice", "iou": "IoU", "hd95_px": "HD95 (px)", "hd95_mm": "HD95 (mm)",
                 "assd_px": "ASSD (px)", "assd_mm": "ASSD (mm)", "frames_with_class": "Frames with class",
                 "frames_scored": "Frames scored", "missed_frames": "Missed frames",
                 "false_positive_frames": "False-pos. frames"}


def swatch(rgb: tuple[int, int, int], size: int = 14) -> QIcon:
    """A filled square icon in colour ``rgb``."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*rgb))
    return QIcon(pixmap)


def format_area(area: ClassArea) -> str:
    """'56.7 mm² (1,234 px)', or just '1,234 px' when the pixel spacing is unknown."""
    pixels = f"{area.pixels:,} px"
    return pixels if area.mm2 is None else f"{area.mm2:,.1f} mm² ({pixels})"


def _metric_value(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3g}" if isinstance(value, float) else html.escape(str(value))


def metrics_table(metrics: dict[str, Any]) -> str:
    """Test metrics as an HTML table: one row per metric, one column per class.

    Args:
        metrics: the contract's metrics, e.g. ``{"gland": {"dice": 0.95, ...}, ...}``;
            values that are not per-class dicts become rows of their own.
    """
    if not metrics:
        return "none recorded"
    per_class = {name: scores for name, scores in metrics.items() if isinstance(scores, dict)}
    others = {name: value for name, value in metrics.items() if not isinstance(value, dict)}
    present: set[str] = set().union(*per_class.values())
    keys = [key for key in METRIC_LABELS if key in present] + sorted(present - METRIC_LABELS.keys())
    name = "<td style='padding: 1px 6px 1px 0'>{}</td>"
    cell = "<td align='right' style='padding: 1px 6px'>{}</td>"
    rows = ["<tr><td></td>" + "".join(cell.format(f"<b>{html.escape(n)}</b>") for n in per_class) + "</tr>"]
    for key in keys:
        rows.append("<tr>" + name.format(html.escape(METRIC_LABELS.get(key, key)))
                    + "".join(cell.format(_metric_value(scores.get(key))) for scores in per_class.values()) + "</tr>")
    for key, value in others.items():
        rows.append("<tr>" + name.format(html.escape(key)) + cell.format(_metric_value(value)) + "</tr>")
    return "<table cellspacing='0'>" + "".join(rows) + "</table>"


def _slider(low: int, high: int) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(low, high)
    return slider


def _wrapping(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)  # model metadata is shown as written, never as markup
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class SidePanel(QWidget):
    """Controls and facts next to the image.

    Signals:
        visibility_changed(int, bool): class index shown/hidden.
        opacity_changed(float): overlay opacity in [0, 1].
        threshold_changed(float): probability threshold.
    """

    visibility_changed = Signal(int, bool)
    opacity_changed = Signal(float)
    threshold_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedWidth(PANEL_WIDTH)
        self.class_boxes: list[QCheckBox] = []
        self.area_labels: list[QLabel] = []
        self.metrics_label = QLabel()
        self._default_threshold = 0.5

        self.note_label = _wrapping()
        self.note_label.setStyleSheet(NOTE_STYLE)
        self.note_label.hide()

        classes = QGroupBox("Segmentation")
        self._class_grid = QGridLayout(classes)
        self._class_grid.setColumnStretch(1, 1)
        self._no_classes = QLabel("No model loaded.")
        self._class_grid.addWidget(self._no_classes, 0, 0, 1, 2)

        display = QGroupBox("Display")
        display_layout = QGridLayout(display)
        self.opacity_slider = _slider(0, 100)
        self.threshold_slider = _slider(round(THRESHOLD_RANGE[0] * 100), round(THRESHOLD_RANGE[1] * 100))
        self._opacity_value, self._threshold_value = QLabel(), QLabel()
        reset = QPushButton("Model default")
        reset.setToolTip("Reset the threshold to the model's own value")
        reset.clicked.connect(lambda: self.threshold_slider.setValue(round(self._default_threshold * 100)))
        for row, (name, slider, value) in enumerate((("Opacity", self.opacity_slider, self._opacity_value),
                                                     ("Threshold", self.threshold_slider, self._threshold_value))):
            display_layout.addWidget(QLabel(name), row, 0)
            display_layout.addWidget(slider, row, 1)
            display_layout.addWidget(value, row, 2)
        display_layout.addWidget(reset, 2, 1, 1, 2, Qt.AlignmentFlag.AlignRight)
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        self.threshold_slider.valueChanged.connect(self._on_threshold)

        self.measure_box = MeasurePanel()
        self.volume_box = VolumePanel()
        self.edit_box = EditPanel()
        frame_box = QGroupBox("Frame")
        self.frame_form = QFormLayout(frame_box)
        model_box = QGroupBox("Model")
        self.model_form = QFormLayout(model_box)
        for form in (self.frame_form, self.model_form):
            form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        for widget in (self.note_label, classes, display, self.measure_box, self.volume_box, self.edit_box, frame_box,
                       model_box):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.set_frame(None, None)
        self.set_model(None, None)

    def set_display(self, opacity: float, threshold: float, default_threshold: float) -> None:
        """Moves the sliders to the session's values without emitting change signals."""
        self._default_threshold = default_threshold
        for slider, value in ((self.opacity_slider, opacity), (self.threshold_slider, threshold)):
            slider.blockSignals(True)
            slider.setValue(round(value * 100))
            slider.blockSignals(False)
        self._opacity_value.setText(f"{round(opacity * 100)} %")
        self._threshold_value.setText(f"{threshold:.2f}")

    def set_model(self, contract: ModelContract | None, path: Path | None,
                  colours: list[tuple[int, int, int]] | None = None, runs: str = "") -> None:
        """Shows a model's classes (with their overlay colours, RGB 0-255; default
        :func:`pipeline.inference.measure.colour_for`), note and provenance (None: no model loaded), which
        precision runs and why (``runs``, :attr:`pipeline.inference.runtime.ModelChoice.reason`) and, for an
        INT8 model, its accuracy gate's figures."""
        for widget in self.class_boxes + self.area_labels:
            self._class_grid.removeWidget(widget)
            widget.deleteLater()
        self.class_boxes, self.area_labels = [], []
        self._no_classes.setVisible(contract is None)
        self.edit_box.set_classes(tuple(contract.classes) if contract is not None else ())
        _clear(self.model_form)
        if contract is None:
            self.note_label.hide()
            self.model_form.addRow(_wrapping("None. Use File › Open model… or drop an .onnx file here."))
            return
        for index, name in enumerate(contract.classes):
            box = QCheckBox(name)
            box.setIcon(swatch(colours[index] if colours and index < len(colours) else colour_for(index)))
            box.setChecked(True)
            box.setStyleSheet("font-weight: bold;")
            box.toggled.connect(lambda checked, i=index: self.visibility_changed.emit(i, checked))
            area = QLabel("—")
            area.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self._class_grid.addWidget(box, index + 1, 0)
            self._class_grid.addWidget(area, index + 1, 1)
            self.class_boxes.append(box)
            self.area_labels.append(area)
        self.note_label.setText(f"⚠ {contract.note}")
        self.note_label.setVisible(bool(contract.note))
        network = " / ".join(part for part in (contract.arch, contract.encoder) if part) or "unknown"
        for label, text in (("File", path.name if path else "—"), ("Classes", ", ".join(contract.classes)),
                            ("Network", network), ("Input", f"{contract.size} × {contract.size} px"),
                            ("Dataset", contract.dataset_version), ("Code", contract.code_version),
                            ("Runs", runs or contract.precision), ("Test-time flips", flips_text(contract.flips)),
                            ("INT8 gate", int8_gate_text(contract))):
            if text:
                self.model_form.addRow(label, _wrapping(text))
        self.model_form.addRow(QLabel("Test metrics"))
        self.metrics_label = QLabel(metrics_table(contract.metrics))
        self.metrics_label.setTextFormat(Qt.TextFormat.RichText)
        self.model_form.addRow(self.metrics_label)

    def set_frame(self, path: Path | None, frame: Frame | None, calibration: Calibration | None = None) -> None:
        """Shows the open frame's file, size, pixel spacing and where the spacing came from (None: no frame)."""
        _clear(self.frame_form)
        if path is None or frame is None:
            self.frame_form.addRow(_wrapping("None. Use File › Open frame… or drop a file here."))
            return
        height, width = frame.gray.shape
        spacing = calibration.spacing_mm if calibration is not None else None
        if spacing is not None and calibration is not None:
            said = f"{spacing[0]:.4f} × {spacing[1]:.4f} mm, from {SPACING_SOURCES[calibration.source]}"
        else:
            said = "unknown: areas in px only" + (f" ({calibration.note})" if calibration is not None else "")
        for label, text in (("File", path.name), ("Size", f"{width} × {height} px"), ("Pixel spacing", said)):
            self.frame_form.addRow(label, _wrapping(text))

    def set_colours(self, colours: list[tuple[int, int, int]]) -> None:
        """Shows each class's overlay colour (RGB, 0-255 each, in channel order) in its swatch."""
        for box, rgb in zip(self.class_boxes, colours):
            box.setIcon(swatch(rgb))

    def set_areas(self, areas: list[ClassArea]) -> None:
        """Shows each class's area; an empty list shows dashes (no result yet)."""
        for index, label in enumerate(self.area_labels):
            label.setText(format_area(areas[index]) if index < len(areas) else "—")

    def _on_opacity(self, value: int) -> None:
        self._opacity_value.setText(f"{value} %")
        self.opacity_changed.emit(value / 100.0)

    def _on_threshold(self, value: int) -> None:
        self._threshold_value.setText(f"{value / 100:.2f}")
        self.threshold_changed.emit(value / 100.0)


def flips_text(flips: str) -> str:
    """The contract's test-time flips for people ("horizontal: 2 network passes per frame"); empty for ``none``."""
    return "" if flips == "none" else f"{flips}: {len(FLIPS[flips])} network passes per frame, averaged"


def int8_gate_text(contract: ModelContract) -> str:
    """An INT8 model's gate figures in one line ("masks agree with fp32: gland Dice 0.998, ...; largest test
    metric drop 0.002 on 20 frames"); empty for a float model or a record without them."""
    gate = (contract.quantization or {}).get("gate")
    if not isinstance(gate, dict) or not gate.get("mask_dice"):
        return ""
    agreement = ", ".join(f"{name} Dice {value:.3f}" for name, value in gate["mask_dice"].items())
    drop = max(gate.get("metric_drop", {}).values(), default=0.0)
    return f"masks agree with fp32: {agreement}; largest test metric drop {drop:.3f} on {gate.get('frames', '?')} frames"


def _clear(form: QFormLayout) -> None:
    while form.rowCount():
        form.removeRow(0)
