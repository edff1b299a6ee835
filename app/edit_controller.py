"""Wires the mask editor: brush and eraser strokes, fill, undo and redo (Qt's undo stack), reset.

A stroke is painted live into the session as the mouse moves and becomes one undo step when
the button is released; a fill is one step; "reset to the model's mask" is one step too, so
it can be undone. Each step keeps the edited class's mask before and after, one bit per pixel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand, QUndoStack

from app.edit_panel import EditPanel
from app.editing import PackedMask, Point, fill_outline, stroke
from app.image_view import ImageView
from app.session import Session

log = logging.getLogger(__name__)


class MaskEdit(QUndoCommand):
    """One edit of one class's mask: ``after`` on redo, ``before`` on undo."""

    def __init__(self, session: Session, index: int, before: np.ndarray, after: np.ndarray, text: str,
                 on_change: Callable[[], None]) -> None:
        super().__init__(text)
        self._session, self._index, self._on_change = session, index, on_change
        self._before, self._after = PackedMask.pack(before), PackedMask.pack(after)

    def redo(self) -> None:
        self._session.set_class_mask(self._index, self._after.unpack())
        self._on_change()

    def undo(self) -> None:
        self._session.set_class_mask(self._index, self._before.unpack())
        self._on_change()


class ResetToModel(QUndoCommand):
    """Drops the edits (the masks are the model's again); undo brings them back."""

    def __init__(self, session: Session, on_change: Callable[[], None]) -> None:
        super().__init__("reset to the model's mask")
        self._session, self._on_change = session, on_change
        self._edited = session.edited.copy() if session.edited is not None else None

    def redo(self) -> None:
        self._session.reset_to_model()
        self._on_change()

    def undo(self) -> None:
        self._session.edited = self._edited.copy() if self._edited is not None else None
        self._session.refresh_calipers()
        self._on_change()


class EditController(QObject):
    """The editor's tools on ``view`` and ``panel``, editing ``session``; ``on_change`` redraws the window.

    Args:
        session: the window's session.
        view: the image view (painting mode, strokes).
        panel: the Edit box.
        on_change: called after every change of the masks (redraw overlay, areas, calipers).
        say: shows a one-line message (the status bar's).
    """

    def __init__(self, session: Session, view: ImageView, panel: EditPanel, on_change: Callable[[], None],
                 say: Callable[[str], None]) -> None:
        super().__init__(view)
        self.session, self.view, self.panel, self._on_change, self._say = session, view, panel, on_change, say
        self.undo_stack = QUndoStack(self)
        self.tool = "off"
        self._points: list[Point] = []
        self._before: np.ndarray | None = None
        panel.tool_chosen.connect(self.set_tool)
        panel.undo_button.clicked.connect(self.undo_stack.undo)
        panel.redo_button.clicked.connect(self.undo_stack.redo)
        panel.reset_button.clicked.connect(self.reset)
        self.undo_stack.canUndoChanged.connect(panel.undo_button.setEnabled)
        self.undo_stack.canRedoChanged.connect(panel.redo_button.setEnabled)
        view.stroke_point.connect(self._on_point)
        view.stroke_finished.connect(self._on_finished)
        panel.undo_button.setEnabled(False)
        panel.redo_button.setEnabled(False)

    @property
    def class_index(self) -> int:
        """The class being edited (the panel's choice)."""
        return max(self.panel.class_box.currentIndex(), 0)

    def set_tool(self, tool: str) -> None:
        """Chooses ``off``, ``brush``, ``eraser`` or ``fill``; any but ``off`` turns dragging into editing."""
        self.tool = tool
        self.panel.choose_tool(tool)
        self.view.set_painting(tool != "off")

    def new_frame(self) -> None:
        """Another frame is shown: the undo history (of the last frame) is cleared; the frame's masks may be
        edited already (a case frame keeps its edits)."""
        self.undo_stack.clear()
        self._points, self._before = [], None
        self.panel.set_edited(self.session.edited is not None)

    def reset(self) -> None:
        """Back to the model's mask, as one undoable step."""
        if self.session.edited is not None:
            self.undo_stack.push(ResetToModel(self.session, self._changed))

    def _changed(self) -> None:
        self.panel.set_edited(self.session.edited is not None)
        self._on_change()

    def _on_point(self, x: float, y: float, first: bool) -> None:
        if self.session.masks() is None or self.tool == "off":
            return
        if self.tool == "fill":
            if first:
                self._fill((x, y))
            return
        if first:
            self._points, self._before = [], self.session.class_mask(self.class_index)
        if self._before is None:
            return
        self._points.append((x, y))
        painted = stroke(self._before, self._points, self.panel.radius_box.value(), self.tool == "brush")
        self.session.set_class_mask(self.class_index, painted)  # live; one undo step on release
        self._changed()

    def _on_finished(self) -> None:
        if self._before is None or not self._points:
            return
        after = self.session.class_mask(self.class_index)
        name = self.panel.class_box.currentText()
        self.undo_stack.push(MaskEdit(self.session, self.class_index, self._before, after, f"{self.tool} {name}",
                                      self._changed))
        log.info("mask edit: %s", self.tool)
        self._points, self._before = [], None

    def _fill(self, seed: Point) -> None:
        before = self.session.class_mask(self.class_index)
        try:
            after = fill_outline(before, seed)
        except ValueError as error:
            self._say(f"Fill: {error}.")
            return
        self.undo_stack.push(MaskEdit(self.session, self.class_index, before, after,
                                      f"fill {self.panel.class_box.currentText()}", self._changed))
