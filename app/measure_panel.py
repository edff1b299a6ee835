"""The side panel's Measurements box: the frame's plane (and where it came from) and its calipers."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QGroupBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from app.calipers import PLANE_SOURCES, FrameCaliper
from pipeline.inference.gland_size import Spacing
from pipeline.planes import PLANES

AUTOMATIC_CHOICE = "Automatic"
REVIEW_STYLE = "background: #fff3cd; color: #664d03; border: 1px solid #ffda6a; padding: 4px; font-weight: bold;"


class MeasurePanel(QGroupBox):
    """The plane choice and the caliper list.

    Signals:
        plane_chosen(object): ``transverse``, ``sagittal``, or None for the automatic plane
            (the file name's, else the model's).
        tags_edited(str): the frame's tags as typed, comma-separated (when the user leaves the field).
    """

    plane_chosen = Signal(object)
    tags_edited = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Measurements", parent)
        self.plane_box = QComboBox()
        self.plane_box.addItems([AUTOMATIC_CHOICE, *(plane.capitalize() for plane in PLANES)])
        self.plane_box.setToolTip("The frame's plane: it decides which diameters are measured")
        self.plane_box.activated.connect(self._on_plane)
        self.plane_label = QLabel()
        self.plane_label.setWordWrap(True)
        self.review_label = QLabel()
        self.review_label.setWordWrap(True)
        self.calipers_label = QLabel()
        self.calipers_label.setTextFormat(Qt.TextFormat.RichText)
        self.calipers_label.setWordWrap(True)
        self.tags_edit = QLineEdit()
        self.tags_edit.setPlaceholderText("Tags, comma-separated (e.g. poor view, teaching)")
        self.tags_edit.setToolTip("Your words for this frame: kept with the case and shown in the frame list")
        self.tags_edit.editingFinished.connect(self._on_tags_edited)
        layout = QVBoxLayout(self)
        for widget in (self.review_label, self.plane_box, self.plane_label, self.calipers_label, self.tags_edit):
            layout.addWidget(widget)
        self.show_state(None, None, None, [], None)
        self.show_review(None, False)

    def show_review(self, reason: str | None, segmented: bool) -> None:
        """Flags the frame for review with the reason (amber), says it is not flagged, or nothing before a result."""
        if not segmented:
            self.review_label.setText("")
            self.review_label.setStyleSheet("")
        elif reason is None:
            self.review_label.setText("Review: not flagged")
            self.review_label.setStyleSheet("")
        else:
            self.review_label.setText(f"⚠ Review this frame: {reason}")
            self.review_label.setStyleSheet(REVIEW_STYLE)

    def show_state(self, plane: str | None, source: str | None, user_plane: str | None,
                   calipers: list[FrameCaliper], spacing_mm: Spacing | None) -> None:
        """Shows the plane (and its source) and each caliper's length (mm, or px without a spacing)."""
        self.plane_box.setCurrentIndex(0 if user_plane is None else 1 + PLANES.index(user_plane))
        said = plane.capitalize() if plane is not None else "Unknown"
        self.plane_label.setText(f"Plane: {said} ({PLANE_SOURCES[source]})")
        if not calipers:
            self.calipers_label.setText("No calipers: Tools › Add caliper, or a gland to measure.")
            return
        rows = "".join(
            f"<tr><td>{html.escape(c.name)}</td>"
            f"<td align='right'>&nbsp;{html.escape(c.text(spacing_mm)[len(c.name) + 1:])}</td>"
            f"<td>&nbsp;{'auto' if c.automatic else 'edited'}</td></tr>" for c in calipers)
        self.calipers_label.setText(f"<table cellspacing='0'>{rows}</table>")

    def show_tags(self, tags: tuple[str, ...]) -> None:
        """Shows the frame's tags (unless the user is typing in the field)."""
        if not self.tags_edit.hasFocus():
            self.tags_edit.setText(", ".join(tags))

    def _on_tags_edited(self) -> None:
        self.tags_edited.emit(self.tags_edit.text())

    def _on_plane(self, index: int) -> None:
        self.plane_chosen.emit(None if index == 0 else PLANES[index - 1])
