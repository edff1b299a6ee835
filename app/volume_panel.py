"""The side panel's Volume box: the three diameters, the volume, the PSA and its density, acceptance."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QPushButton, QWidget

from app.case_volume import VolumeFigures

PSA_MAX = 10000.0
NOT_ACCEPTED_STYLE = "background: #fff3cd; color: #664d03; padding: 3px; font-weight: bold;"
ACCEPTED_STYLE = "background: #d1e7dd; color: #0a3622; padding: 3px; font-weight: bold;"
FLAG_STYLE = "color: #b02a37; font-weight: bold;"


def _mm(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} mm"


class VolumePanel(QGroupBox):
    """Width, height (transverse frame), length (sagittal frame), volume, PSA, PSA density, acceptance.

    Signals:
        use_frame(): measure the volume on the open frame (for its plane).
        psa_changed(object): the PSA in ng/mL, or None when cleared.
        accept(): the user accepts the measurements.
    """

    use_frame = Signal()
    psa_changed = Signal(object)
    accept = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Volume and PSA density", parent)
        self.use_button = QPushButton("Use this frame for the volume")
        self.use_button.setToolTip("A transverse frame gives the width and height, a sagittal one the length")
        self.use_button.clicked.connect(self.use_frame)
        self.frames_label, self.width_label, self.height_label, self.length_label = (QLabel() for _ in range(4))
        self.volume_label, self.density_label, self.status_label = QLabel(), QLabel(), QLabel()
        for label in (self.frames_label, self.density_label, self.status_label):
            label.setWordWrap(True)
        self.psa_box = QDoubleSpinBox()
        self.psa_box.setRange(0.0, PSA_MAX)
        self.psa_box.setDecimals(2)
        self.psa_box.setSuffix(" ng/mL")
        self.psa_box.setSpecialValueText("not entered")
        self.psa_box.setToolTip("Serum PSA; 0 means not entered")
        self.psa_box.valueChanged.connect(self._on_psa)
        self.accept_button = QPushButton("Accept measurements")
        self.accept_button.clicked.connect(self.accept)
        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow(self.use_button)
        form.addRow(self.frames_label)
        for name, label in (("Width", self.width_label), ("Height", self.height_label), ("Length", self.length_label),
                            ("Volume", self.volume_label), ("PSA", self.psa_box), ("PSA density", self.density_label)):
            if isinstance(label, QLabel):
                label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            form.addRow(name, label)
        form.addRow(self.status_label)
        form.addRow(self.accept_button)
        self.show_figures(None, "", False, None)

    def _on_psa(self, value: float) -> None:
        self.psa_changed.emit(value if value > 0 else None)

    def show_figures(self, figures: VolumeFigures | None, frames: str, accepted: bool, accepted_at: str | None,
                     psa_ng_per_ml: float | None = None) -> None:
        """Shows the case's figures (None: no case), which frames they come from, and the acceptance."""
        self.setEnabled(figures is not None)
        self.frames_label.setText(frames)
        self.width_label.setText(_mm(figures.width_mm if figures else None))
        self.height_label.setText(_mm(figures.height_mm if figures else None))
        self.length_label.setText(_mm(figures.length_mm if figures else None))
        volume = figures.volume_ml if figures else None
        self.volume_label.setText("—" if volume is None else f"{volume:.1f} mL")
        self.volume_label.setToolTip("π/6 × length × width × height" if volume is not None else
                                     (figures.missing or "") if figures else "")
        self.psa_box.blockSignals(True)
        self.psa_box.setValue(psa_ng_per_ml or 0.0)
        self.psa_box.blockSignals(False)
        psa = figures.psa if figures else None
        if psa is None:
            self.density_label.setText("—")
            self.density_label.setStyleSheet("")
        else:
            above = f" ≥ {psa.threshold:g}: above the threshold" if psa.reaches_threshold else \
                f" < {psa.threshold:g}"
            self.density_label.setText(f"{psa.density:.3f} ng/mL/cc{above}")
            self.density_label.setStyleSheet(FLAG_STYLE if psa.reaches_threshold else "")
        self.accept_button.setEnabled(volume is not None and not accepted)
        if figures is None:
            self.status_label.setText("")
            self.status_label.setStyleSheet("")
        elif accepted:
            self.status_label.setText(f"Accepted {accepted_at}")
            self.status_label.setStyleSheet(ACCEPTED_STYLE)
        else:
            why = f": {figures.missing}" if figures.missing else ""
            self.status_label.setText(f"Not accepted{why}")
            self.status_label.setStyleSheet(NOT_ACCEPTED_STYLE)
