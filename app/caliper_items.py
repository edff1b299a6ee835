"""Calipers drawn on the frame: a line, a label and two draggable ends each.

Items live in frame pixel coordinates on the image view's scene; the ends and the label keep
their screen size at any zoom. Dragging an end reports it through :attr:`CaliperLayer.moved`;
the layer never changes the calipers itself (the session does, then :meth:`CaliperLayer.update`).
A click on a caliper's line selects it (for Delete).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QLineF, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import (QGraphicsEllipseItem, QGraphicsItem, QGraphicsLineItem, QGraphicsScene,
                               QGraphicsSimpleTextItem)

from app.calipers import FrameCaliper
from pipeline.inference.gland_size import Spacing

AUTOMATIC_COLOUR = QColor(0, 230, 255)  # from the mask, untouched
USER_COLOUR = QColor(255, 220, 0)  # moved or added by the user
HANDLE_RADIUS_PX = 6  # screen px


class CaliperEnd(QGraphicsEllipseItem):
    """A draggable end: a ring of constant screen size that reports where it was dragged to."""

    def __init__(self, on_moved: Callable[[QPointF], None]) -> None:
        super().__init__(-HANDLE_RADIUS_PX, -HANDLE_RADIUS_PX, 2 * HANDLE_RADIUS_PX, 2 * HANDLE_RADIUS_PX)
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges
                      | QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setCursor(Qt.CursorShape.SizeAllCursor)
        self.setBrush(QBrush(QColor(0, 0, 0, 90)))
        self.setZValue(3)
        self._on_moved = on_moved
        self._placing = False

    def place(self, x: float, y: float) -> None:
        """Moves the end without reporting it (the session already knows)."""
        self._placing = True
        self.setPos(QPointF(x, y))
        self._placing = False

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: object) -> object:  # noqa: N802 (Qt)
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged and not self._placing:
            self._on_moved(self.pos())
        return super().itemChange(change, value)


class CaliperGraphics:
    """The items of one caliper on a scene."""

    def __init__(self, scene: QGraphicsScene, on_moved: Callable[[int, QPointF], None]) -> None:
        self.line = QGraphicsLineItem()
        self.line.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.line.setZValue(2)
        self.label = QGraphicsSimpleTextItem()
        self.label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.label.setZValue(3)
        font = self.label.font()
        font.setBold(True)
        font.setPointSize(font.pointSize() + 2)
        self.label.setFont(font)
        self.label.setPen(QPen(QColor(0, 0, 0), 0.6))  # a dark rim keeps it legible on bright tissue
        self.ends = (CaliperEnd(lambda point: on_moved(0, point)), CaliperEnd(lambda point: on_moved(1, point)))
        for item in (self.line, self.label, *self.ends):
            scene.addItem(item)

    def show(self, caliper: FrameCaliper, spacing_mm: Spacing | None) -> None:
        """Draws ``caliper``: its ends, its line and a 'name length' label at its end."""
        colour = AUTOMATIC_COLOUR if caliper.automatic else USER_COLOUR
        pen = QPen(colour, 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.line.setPen(pen)
        self.line.setLine(QLineF(QPointF(*caliper.start_xy), QPointF(*caliper.end_xy)))
        for end, (x, y) in zip(self.ends, (caliper.start_xy, caliper.end_xy)):
            ring = QPen(colour, 2)
            ring.setCosmetic(True)
            end.setPen(ring)
            end.place(x, y)
        self.label.setText(caliper.text(spacing_mm))
        self.label.setBrush(QBrush(colour))
        self.label.setPos(QPointF(*caliper.end_xy))  # by its end: calipers often cross at their middles

    def remove(self, scene: QGraphicsScene) -> None:
        for item in (self.line, self.label, *self.ends):
            scene.removeItem(item)


class CaliperLayer(QObject):
    """A session's calipers on the view's scene.

    Signals:
        moved(int, int, float, float): caliper index, end (0 or 1), and where it was dragged (frame px).
    """

    moved = Signal(int, int, float, float)

    def __init__(self, scene: QGraphicsScene) -> None:
        super().__init__(scene)
        self._scene = scene
        self._graphics: list[CaliperGraphics] = []

    def update(self, calipers: list[FrameCaliper], spacing_mm: Spacing | None) -> None:
        """Shows exactly ``calipers``, reusing the items already there (a dragged end keeps its grab)."""
        while len(self._graphics) > len(calipers):
            self._graphics.pop().remove(self._scene)
        while len(self._graphics) < len(calipers):
            index = len(self._graphics)
            self._graphics.append(CaliperGraphics(
                self._scene, lambda end, point, index=index: self.moved.emit(index, end, point.x(), point.y())))
        for graphics, caliper in zip(self._graphics, calipers):
            graphics.show(caliper, spacing_mm)

    def selected(self) -> int | None:
        """The index of the selected caliper, or None."""
        return next((index for index, graphics in enumerate(self._graphics) if graphics.line.isSelected()), None)

    def end_item(self, index: int, end: int) -> CaliperEnd:
        """The item of end ``end`` of caliper ``index`` (for tests and hit checks)."""
        return self._graphics[index].ends[end]

    def line_item(self, index: int) -> QGraphicsLineItem:
        """The line item of caliper ``index``."""
        return self._graphics[index].line
