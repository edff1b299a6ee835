"""The frame viewer: the overlay image at the frame's own pixel size, zoomable and pannable."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QMouseEvent, QPainterPath, QPen, QPixmap, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

ZOOM_LIMITS = (0.05, 40.0)
CRISP_ZOOM = 2.0  # from this zoom on, pixels are drawn as crisp squares, not interpolated
WHEEL_STEP = 1.25  # zoom factor per wheel notch (120 units)
BACKGROUND = QColor(24, 24, 26)
MARK_COLOUR = QColor(255, 220, 0)
MARK_SIZE_PX = 8  # half the side of a picked point's cross, screen px


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB array -> an independent QImage copy."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class ImageView(QGraphicsView):
    """Shows one RGB image; wheel zooms around the cursor, dragging pans.

    The image item is in frame pixel coordinates (scene unit = one frame pixel), so
    zoom 1.0 is "100 %" and ``mapFromScene`` gives where a frame pixel is on screen.

    In picking mode (:meth:`start_picking`) a left click reports a point instead of panning,
    and Esc leaves the mode. In painting mode (:meth:`set_painting`) a left-button drag
    reports its points as a stroke instead of panning.

    Signals:
        hovered(int, int): frame pixel (x, y) under the mouse (may lie outside the image).
        point_picked(float, float): in picking mode, the clicked point, frame px (x, y).
        picking_cancelled(): Esc pressed in picking mode (the mode is left).
        stroke_point(float, float, bool): in painting mode, a point of a left-button drag,
            frame px, and whether it starts the stroke.
        stroke_finished(): the drag's button was released.
    """

    hovered = Signal(int, int)
    point_picked = Signal(float, float)
    picking_cancelled = Signal()
    stroke_point = Signal(float, float, bool)
    stroke_finished = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scene = QGraphicsScene(self)
        self._item = QGraphicsPixmapItem()
        self._scene.addItem(self._item)
        self._hint = self._scene.addSimpleText("Open a frame (Ctrl+O) or drop a file here")
        self._hint.setBrush(QColor(150, 150, 155))
        font = self._hint.font()
        font.setPointSize(14)
        self._hint.setFont(font)
        self.setScene(self._scene)
        self.setBackgroundBrush(BACKGROUND)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)  # zoom_by anchors itself
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setAcceptDrops(False)  # also the viewport's: files dropped here go to the main window
        self.setMouseTracking(True)  # also the viewport's: report the pixel under the mouse
        self._fit_mode = True  # keep refitting on resize until the user zooms
        self._picking = False
        self._painting = False
        self._stroking = False
        self._marks = QGraphicsPathItem()
        pen = QPen(MARK_COLOUR, 2)
        pen.setCosmetic(True)  # 2 screen px at any zoom
        self._marks.setPen(pen)
        self._scene.addItem(self._marks)
        self._update_smoothing()

    @property
    def picking(self) -> bool:
        """Whether a left click picks a point (instead of panning)."""
        return self._picking

    def set_painting(self, on: bool) -> None:
        """Enters (True) or leaves painting mode: left-button drags become strokes, with a crosshair cursor."""
        self._painting, self._stroking = bool(on), False
        if not self._picking:
            self.setDragMode(QGraphicsView.DragMode.NoDrag if on else QGraphicsView.DragMode.ScrollHandDrag)
            if on:
                self.viewport().setCursor(Qt.CursorShape.CrossCursor)
            else:
                self.viewport().unsetCursor()

    def start_picking(self) -> None:
        """Enters picking mode: a crosshair cursor, clicks report points, Esc cancels."""
        self._picking = True
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor)
        self.setFocus()

    def stop_picking(self) -> None:
        """Leaves picking mode (dragging pans again) and removes the marks."""
        self._picking = False
        self.show_marks([])
        self.set_painting(self._painting)  # back to painting, or to panning

    def show_marks(self, points: list[tuple[float, float]]) -> None:
        """Draws a cross at each point (frame px) and a line through them; [] clears them."""
        path = QPainterPath()
        size = MARK_SIZE_PX / max(self.zoom, 1e-6)
        for x, y in points:
            path.moveTo(x - size, y)
            path.lineTo(x + size, y)
            path.moveTo(x, y - size)
            path.lineTo(x, y + size)
        if len(points) > 1:
            path.moveTo(*points[0])
            for point in points[1:]:
                path.lineTo(*point)
        self._marks.setPath(path)

    @property
    def zoom(self) -> float:
        """Current scale: screen pixels per frame pixel."""
        return self.transform().m11()

    def has_image(self) -> bool:
        """Whether an image is shown."""
        return not self._item.pixmap().isNull()

    def set_image(self, rgb: np.ndarray, fit: bool = False) -> None:
        """Shows an (H, W, 3) uint8 RGB image, replacing the previous one.

        Args:
            rgb: the image, at the frame's own size.
            fit: fit it to the window (for a new frame); otherwise keep zoom and position.
        """
        self._hint.hide()
        self._item.setPixmap(QPixmap.fromImage(rgb_to_qimage(rgb)))
        self._scene.setSceneRect(self._item.boundingRect())
        if fit:
            self.fit_to_window()

    def fit_to_window(self) -> None:
        """Scales the whole image into the window, and keeps it fitted on resize."""
        self._fit_mode = True
        if self.has_image():
            self.fitInView(self._item, Qt.AspectRatioMode.KeepAspectRatio)
            self._update_smoothing()

    def actual_size(self) -> None:
        """Shows the image at 100 % (one screen pixel per frame pixel)."""
        self._fit_mode = False
        self.resetTransform()
        self._update_smoothing()

    def zoom_by(self, factor: float, anchor: QPoint | None = None) -> None:
        """Zooms by ``factor`` (clamped to :data:`ZOOM_LIMITS`), keeping one point in place.

        Args:
            factor: zoom multiplier, > 1 to enlarge.
            anchor: viewport point whose frame pixel stays put (default: the centre).
        """
        target = min(max(self.zoom * factor, ZOOM_LIMITS[0]), ZOOM_LIMITS[1])
        if not self.has_image() or target == self.zoom:
            return
        anchor = anchor if anchor is not None else self.viewport().rect().center()
        fixed = self.mapToScene(anchor)
        self._fit_mode = False
        self.scale(target / self.zoom, target / self.zoom)
        shift = self.mapFromScene(fixed) - anchor
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + shift.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + shift.y())
        self._update_smoothing()

    def _update_smoothing(self) -> None:
        """Interpolates when the image is shrunk or slightly enlarged; shows crisp pixels beyond."""
        crisp = self.zoom >= CRISP_ZOOM
        self._item.setTransformationMode(Qt.TransformationMode.FastTransformation if crisp
                                         else Qt.TransformationMode.SmoothTransformation)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt override)
        """Zooms around the cursor."""
        notches = event.angleDelta().y() / 120.0
        if notches:
            self.zoom_by(WHEEL_STEP ** notches, event.position().toPoint())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        """In picking mode, a left click reports its frame point; otherwise pans."""
        if self._picking and event.button() == Qt.MouseButton.LeftButton:
            point = self.mapToScene(event.position().toPoint())
            self.point_picked.emit(point.x(), point.y())
            event.accept()
            return
        if self._painting and event.button() == Qt.MouseButton.LeftButton:
            point = self.mapToScene(event.position().toPoint())
            self._stroking = True
            self.stroke_point.emit(point.x(), point.y(), True)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        """Ends a stroke in painting mode."""
        if self._stroking and event.button() == Qt.MouseButton.LeftButton:
            self._stroking = False
            self.stroke_finished.emit()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        """Esc leaves picking mode."""
        if self._picking and event.key() == Qt.Key.Key_Escape:
            self.stop_picking()
            self.picking_cancelled.emit()
            event.accept()
            return
        super().keyPressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        """Reports the frame pixel under the mouse, then pans when dragging."""
        point: QPointF = self.mapToScene(event.position().toPoint())
        self.hovered.emit(int(np.floor(point.x())), int(np.floor(point.y())))
        if self._stroking:
            self.stroke_point.emit(point.x(), point.y(), False)
            event.accept()
            return
        super().mouseMoveEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt override)
        """Keeps the image fitted while in fit mode."""
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit_to_window()
