"""The side panel's Edit box: the tool (brush, eraser, fill), the class edited, the brush size, undo/redo, reset."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QGridLayout, QGroupBox, QLabel, QPushButton, QSpinBox,
                               QWidget)

from app.editing import BRUSH_RANGE_PX

TOOLS = ("off", "brush", "eraser", "fill")
DEFAULT_RADIUS_PX = 8


class EditPanel(QGroupBox):
    """Controls of the mask editor.

    Signals:
        tool_chosen(str): one of :data:`TOOLS` (``off``: dragging pans again).
    """

    tool_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Edit", parent)
        layout = QGridLayout(self)
        self.tool_buttons: dict[str, QPushButton] = {}
        group = QButtonGroup(self)
        for column, tool in enumerate(TOOLS):
            button = QPushButton(tool.capitalize())
            button.setCheckable(True)
            group.addButton(button)
            button.clicked.connect(lambda _checked, name=tool: self.tool_chosen.emit(name))
            layout.addWidget(button, 0, column)
            self.tool_buttons[tool] = button
        self.tool_buttons["off"].setChecked(True)
        self.class_box = QComboBox()
        self.radius_box = QSpinBox()
        self.radius_box.setRange(*BRUSH_RANGE_PX)
        self.radius_box.setValue(DEFAULT_RADIUS_PX)
        self.radius_box.setSuffix(" px")
        self.radius_box.setToolTip("Brush and eraser radius, frame pixels")
        self.undo_button, self.redo_button = QPushButton("Undo"), QPushButton("Redo")
        self.reset_button = QPushButton("Reset to the model's mask")
        self.state_label = QLabel()
        layout.addWidget(QLabel("Class"), 1, 0)
        layout.addWidget(self.class_box, 1, 1, 1, 3)
        layout.addWidget(QLabel("Size"), 2, 0)
        layout.addWidget(self.radius_box, 2, 1, 1, 3)
        layout.addWidget(self.undo_button, 3, 0, 1, 2)
        layout.addWidget(self.redo_button, 3, 2, 1, 2)
        layout.addWidget(self.reset_button, 4, 0, 1, 4)
        layout.addWidget(self.state_label, 5, 0, 1, 4)
        self.set_classes(())

    def set_classes(self, classes: tuple[str, ...]) -> None:
        """Lists the model's classes to edit."""
        self.class_box.clear()
        self.class_box.addItems(list(classes))

    def choose_tool(self, tool: str) -> None:
        """Checks ``tool``'s button (without emitting)."""
        self.tool_buttons[tool].setChecked(True)

    def set_edited(self, edited: bool) -> None:
        """Says whether the masks are the user's or the model's."""
        self.state_label.setText("Masks: edited by you" if edited else "Masks: the model's")
        self.reset_button.setEnabled(edited)
