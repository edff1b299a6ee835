"""Manual calibration: two clicks on the frame and the distance between them, typed in mm.

Tools › Calibrate… puts the view in picking mode; the first click marks a point, the second
ends the line, and a dialog asks for its true length (for example two centimetre ticks of
the depth scale, 10 mm apart). The result goes to a callback; Esc or Cancel leaves the
frame's calibration as it was.
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


class CalibrationTool(QObject):
    """Collects two points on an :class:`ImageView` and a distance, then calls ``on_done(start, end, mm)``.

    Args:
        view: the view to pick on.
        on_done: receives the two points (frame px) and the distance (mm).
        say: shows a one-line hint (e.g. the status bar's).
        ask: asks for the distance given the line's length in px; None means cancelled.
    """

    def __init__(self, view: ImageView, on_done: Callable[[Point, Point, float], None],
                 say: Callable[[str], None], ask: Callable[[float], float | None]) -> None:
        super().__init__(view)
        self._view, self._on_done, self._say, self._ask = view, on_done, say, ask
        self._points: list[Point] = []
        view.point_picked.connect(self._picked)
        view.picking_cancelled.connect(lambda: self._say("Calibration cancelled."))

    @property
    def active(self) -> bool:
        """Whether the tool is waiting for clicks."""
        return self._view.picking

    def start(self) -> None:
        """Starts a calibration: the next two clicks on the frame are its ends."""
        self._points = []
        self._view.start_picking()
        self._say("Calibrate: click one end of a known distance (Esc cancels).")

    def _picked(self, x: float, y: float) -> None:
        self._points.append((x, y))
        self._view.show_marks(self._points)
        if len(self._points) == 1:
            self._say("Calibrate: click the other end.")
            return
        start, end = self._points
        length_px = ((end[0] - start[0]) ** 2 + (end[1] - start[1]) ** 2) ** 0.5
        distance_mm = self._ask(length_px)
        self._view.stop_picking()
        if distance_mm is None:
            self._say("Calibration cancelled.")
            return
        self._on_done(start, end, distance_mm)
