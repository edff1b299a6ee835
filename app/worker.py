"""Runs the network off the GUI thread, so the window stays responsive.

One background thread (a private ``QThreadPool`` of size 1). A new request supersedes
the previous one: a request still queued is dropped, one already running finishes but
its result is discarded. Only the latest request's outcome is reported, so the last
one wins and a stale result never reaches the window.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from pipeline.inference.predictor import Segmenter

Box = tuple[int, int, int, int]  # (x, y, width, height) px
log = logging.getLogger(__name__)


class _JobSignals(QObject):
    """Carries a job's outcome from the pool thread to the GUI thread (queued)."""

    done = Signal(int, object)
    error = Signal(int, str)


class _SegmentJob(QRunnable):
    """One ``Segmenter.segment`` call, tagged with its request number."""

    def __init__(self, request: int, segmenter: Segmenter, gray: np.ndarray, region_box: Box | None,
                 signals: _JobSignals) -> None:
        super().__init__()
        self._request, self._segmenter, self._gray, self._signals = request, segmenter, gray, signals
        self._region_box = region_box

    def run(self) -> None:
        """Segments the frame and emits the result or a one-line error."""
        try:
            result = self._segmenter.segment(self._gray, self._region_box)
        except Exception as error:  # any failure must reach the GUI, not die silently in the pool
            log.exception("segmentation failed")  # the traceback goes to the app's log file
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            self._signals.error.emit(self._request, f"Segmentation failed: {message}")
        else:
            self._signals.done.emit(self._request, result)


class SegmentationWorker(QObject):
    """Queues segmentation requests on a background thread; the last request wins.

    Signals:
        finished(object): the latest request's ``Segmentation``.
        failed(str): the latest request's one-line error message.
        busy_changed(bool): True when a request starts, False when the latest one ends.
    """

    finished = Signal(object)
    failed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _JobSignals(self)
        self._signals.done.connect(self._on_done)
        self._signals.error.connect(self._on_error)
        self._latest = 0
        self._busy = False

    @property
    def busy(self) -> bool:
        """Whether the latest request is still running or queued."""
        return self._busy

    def submit(self, segmenter: Segmenter, gray: np.ndarray, region_box: Box | None = None) -> None:
        """Requests a segmentation of ``gray`` (with its DICOM region, if any), superseding any earlier request."""
        self._latest += 1
        self._pool.clear()  # drop a request that has not started yet
        self._pool.start(_SegmentJob(self._latest, segmenter, gray, region_box, self._signals))
        self._set_busy(True)

    def shutdown(self) -> None:
        """Discards pending work and waits for the running job to end (call before exit)."""
        self._latest += 1
        self._pool.clear()
        self._pool.waitForDone()
        self._set_busy(False)

    @Slot(int, object)
    def _on_done(self, request: int, result: object) -> None:
        if request == self._latest:
            self._set_busy(False)
            self.finished.emit(result)

    @Slot(int, str)
    def _on_error(self, request: int, message: str) -> None:
        if request == self._latest:
            self._set_busy(False)
            self.failed.emit(message)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)
