"""Wires the measuring tools: the calipers on the view, the plane choice, adding and deleting calipers.

The session holds the state (:mod:`app.calipers`); this controller turns user actions into
session calls and redraws the calipers and the Measurements box after each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from app.caliper_items import CaliperLayer
from app.image_view import ImageView
from app.measure_panel import MeasurePanel
from app.picking import Point, PointPairTool
from app.session import Session

log = logging.getLogger(__name__)


class MeasureController(QObject):
    """Keeps the calipers on ``view`` and the ``panel`` in step with ``session``.

    Args:
        session: the window's session.
        view: the image view (its scene gets the caliper items).
        panel: the Measurements box.
        say: shows a one-line message (the status bar's).

    Signals:
        changed(): the user moved, added or deleted a caliper or chose the plane (the session and the
            Measurements box already show it), so what depends on the calipers can be redrawn.
    """

    changed = Signal()

    def __init__(self, session: Session, view: ImageView, panel: MeasurePanel, say: Callable[[str], None]) -> None:
        super().__init__(view)
        self.session, self.panel, self._say = session, panel, say
        self.layer = CaliperLayer(view.scene())
        self.layer.moved.connect(self._on_moved)
        self.add_tool = PointPairTool(view, self._add, say, "Add caliper")
        panel.plane_chosen.connect(self._on_plane)

    def refresh(self) -> None:
        """Redraws the calipers and the Measurements box from the session."""
        spacing = self.session.calibration.spacing_mm if self.session.calibration is not None else None
        self.layer.update(self.session.calipers, spacing)
        plane, source = self.session.plane
        self.panel.show_state(plane, source, self.session.user_plane, self.session.calipers, spacing)
        self.panel.show_review(self.session.review_reason(), self.session.segmentation is not None)

    def delete_selected(self) -> bool:
        """Deletes the selected caliper; returns whether one was selected."""
        index = self.layer.selected()
        if index is None:
            self._say("Select a caliper first: click its line.")
            return False
        name = self.session.calipers[index].name
        self.session.delete_caliper(index)
        self.refresh()
        self.changed.emit()
        self._say(f"Deleted the caliper '{name}'.")
        return True

    def _on_moved(self, index: int, end: int, x: float, y: float) -> None:
        if index < len(self.session.calipers):
            self.session.move_caliper(index, end, (x, y))
            self.refresh()
            self.changed.emit()

    def _add(self, start: Point, end: Point) -> None:
        caliper = self.session.add_caliper(start, end)
        log.info("caliper added")
        self.refresh()
        self.changed.emit()
        spacing = self.session.calibration.spacing_mm if self.session.calibration is not None else None
        self._say(f"Added {caliper.text(spacing)}.")

    def _on_plane(self, plane: str | None) -> None:
        self.session.set_plane(plane)
        self.refresh()
        self.changed.emit()
