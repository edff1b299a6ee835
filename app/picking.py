"""Two clicks on the frame: the ends of a manual calibration or of a new caliper.

A :class:`PointPairTool` puts the view in picking mode; the first click marks a point, the
second ends the line and hands both to its callback; Esc cancels. Tools › Calibrate… then
asks for the line's true length in mm (:func:`ask_distance_mm`), for example two centimetre
ticks of the depth scale, 10 mm apart; Tools › Add caliper keeps the line as a caliper.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QInputDialog, QWidget

from app.image_view import ImageView

Point = tuple[float, float]
DEFAULT_DISTANCE_MM = 10.0
DISTANCE_RANGE_MM = (0.1, 1000.0)


def ask_distance_mm(parent: QWidget, length_px: float) -> float | None:
    """Asks for the true distance of a line ``length_px`` long, mm; None when cancelled."""
    value, accepted = QInputDialog.getDouble(
        parent, "Calibrate", f"The line is {length_px:.1f} px long. Its true length, in mm:", DEFAULT_DISTANCE_MM,
        DISTANCE_RANGE_MM[0], DISTANCE_RANGE_MM[1], 2)
    return float(value) if accepted else None


class PointPairTool(QObject):
    """Collects two points on an :class:`ImageView`, then calls ``on_pair(start, end)``.

    Only one tool picks at a time: starting one while another picks restarts the picking
    for the new one.

    Args:
        view: the view to pick on.
        on_pair: receives the two points, frame px.
        say: shows a one-line hint (e.g. the status bar's).
        task: what the points are for, in the hints ("Calibrate", "Add caliper").
    """

    def __init__(self, view: ImageView, on_pair: Callable[[Point, Point], None], say: Callable[[str], None],
                 task: str) -> None:
        super().__init__(view)
        self._view, self._on_pair, self._say, self._task = view, on_pair, say, task
        self._points: list[Point] = []
        self._active = False
        view.point_picked.connect(self._picked)
        view.picking_cancelled.connect(self._cancelled)

    @property
    def active(self) -> bool:
        """Whether this tool is waiting for clicks."""
        return self._active and self._view.picking

    def start(self) -> None:
        """The next two clicks on the frame are the ends."""
        for tool in self._view.findChildren(PointPairTool):
            tool._active = False
        self._points, self._active = [], True
        self._view.start_picking()
        self._say(f"{self._task}: click one end (Esc cancels).")

    def _cancelled(self) -> None:
        if self._active:
            self._active = False
            self._say(f"{self._task}: cancelled.")

    def _picked(self, x: float, y: float) -> None:
        if not self._active:
            return
        self._points.append((x, y))
        self._view.show_marks(self._points)
        if len(self._points) == 1:
            self._say(f"{self._task}: click the other end.")
            return
        self._active = False
        start, end = self._points
        try:
            self._on_pair(start, end)  # the line stays drawn while, say, a dialog asks about it
        finally:
            if not any(tool.active for tool in self._view.findChildren(PointPairTool)):
                self._view.stop_picking()
