"""The case's frame list: a thumbnail per frame, with marks for the work on it.

Thumbnails are made a few at a time from the event loop (:meth:`FrameList.set_case`), so a
long cine loop fills in while the user already works on its first frame.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from PySide6.QtCore import QSize, QTimer, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from app.case import Case
from pipeline.imaging.frames import Frame, FrameReadError

THUMBNAIL_PX = 96
THUMBNAILS_PER_TICK = 2


def thumbnail(gray: np.ndarray, size: int = THUMBNAIL_PX) -> QImage:
    """A grey frame shrunk to fit ``size`` x ``size`` px (aspect kept), as a QImage that owns its pixels."""
    height, width = gray.shape
    scale = size / max(height, width)
    small = cv2.resize(gray, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA)
    small = np.ascontiguousarray(small)
    return QImage(small.data, small.shape[1], small.shape[0], small.strides[0], QImage.Format.Format_Grayscale8).copy()


class FrameList(QListWidget):
    """One row per case frame: thumbnail, number, file and marks.

    Signals:
        frame_chosen(int): the user picked frame number (0-based).
    """

    frame_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(THUMBNAIL_PX, THUMBNAIL_PX))
        self.setMinimumWidth(THUMBNAIL_PX + 150)
        self.setWordWrap(True)
        self._case: Case | None = None
        self._read: Callable[[int], Frame] | None = None
        self._pending: list[int] = []
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._make_thumbnails)
        self.currentRowChanged.connect(self._on_row)

    def set_case(self, case: Case, read: Callable[[int], Frame]) -> None:
        """Lists ``case``'s frames; ``read(number)`` gives a frame's pixels for its thumbnail."""
        self.blockSignals(True)
        self.clear()
        for number, ref in enumerate(case.frames):
            item = QListWidgetItem(f"{number + 1}. {ref.label}")
            item.setToolTip(str(ref.path))
            self.addItem(item)
        self.blockSignals(False)
        self._case, self._read = case, read
        self._pending = list(range(len(case.frames)))
        self._timer.start()

    @property
    def thumbnails_done(self) -> bool:
        """Whether every thumbnail has been made."""
        return not self._pending

    def _make_thumbnails(self) -> None:
        for _ in range(THUMBNAILS_PER_TICK):
            if not self._pending or self._read is None:
                self._timer.stop()
                return
            number = self._pending.pop(0)
            try:
                image = thumbnail(self._read(number).gray)
            except FrameReadError:
                continue  # the frame says so when opened
            self.item(number).setIcon(QIcon(QPixmap.fromImage(image)))

    def show_marks(self, number: int, marks: str) -> None:
        """Sets frame ``number``'s second line (its plane, "edited", "volume" ...)."""
        if self._case is not None and 0 <= number < self.count():
            ref = self._case.frames[number]
            self.item(number).setText(f"{number + 1}. {ref.label}" + (f"\n{marks}" if marks else ""))

    def select(self, number: int) -> None:
        """Highlights frame ``number`` without emitting :attr:`frame_chosen`."""
        self.blockSignals(True)
        self.setCurrentRow(number)
        self.blockSignals(False)

    def _on_row(self, row: int) -> None:
        if row >= 0:
            self.frame_chosen.emit(row)
