"""The main window: menus, the image view, the side panel and the status bar.

All state lives in :class:`app.session.Session`; this module wires widgets to it. Every
user action that can fail (opening a frame or model, saving) reports a one-line
message (a critical dialog by default) and leaves the window usable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QMimeData, Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QInputDialog, QLabel, QMainWindow, QMessageBox,
                               QProgressBar, QScrollArea, QWidget)

from app.case_controller import CaseController
from app.case_file import CaseFileError
from app.edit_controller import EditController
from app.frame_list import FrameList
from app.measuring import MeasureController
from app.outputs_controller import OutputsController
from app.picking import Point, PointPairTool, ask_distance_mm
from app.image_view import WHEEL_STEP, ImageView
from app.log_file import REDACT, current_log_file
from app.panel import SidePanel
from app.preferences import PreferencesDialog, open_preferences
from app.session import Session
from app.settings import TICK_RANGE_MM, AppSettings
from app.worker import SegmentationWorker
from pipeline.imaging.frames import FRAME_SUFFIXES, Frame, FrameReadError
from pipeline.inference.predictor import ModelLoadError, Segmentation, Segmenter
from pipeline.inference.session_cache import default_cache_dir

APP_TITLE = "TRUS Segmentation"
MODEL_SUFFIX = ".onnx"
FRAME_FILTER = f"Frames ({' '.join('*' + s for s in FRAME_SUFFIXES)});;All files (*)"
log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """The clinician's window.

    Attributes:
        session: the frame, segmentation and display settings being shown.
        segmenter: the loaded model, or None.
        view: the image view.
        panel: the side panel.
        worker: runs the model off the GUI thread.
        progress: the status bar's busy indicator, visible while the model runs.
    """

    def __init__(self, report_error: Callable[[str], None] | None = None, settings: AppSettings | None = None) -> None:
        """Builds the window with no frame and no model.

        Args:
            report_error: receives one-line error messages; default: a critical dialog.
            settings: the persisted settings; default: the user's (:class:`app.settings.AppSettings`).
        """
        super().__init__()
        self.settings = settings if settings is not None else AppSettings()
        self.session = Session(opacity=self.settings.opacity, psa_threshold=self.settings.psa_threshold,
                               colours=self.settings.colours)
        self.segmenter: Segmenter | None = None
        self._report_error = report_error or self._error_dialog
        self._started = 0.0
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)

        self.view = ImageView()
        self.panel = SidePanel()
        self.frame_list = FrameList()
        scroll = QScrollArea()
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFixedWidth(self.panel.width() + scroll.verticalScrollBar().sizeHint().width())
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.frame_list)
        layout.addWidget(self.view, 1)
        layout.addWidget(scroll)
        self.setCentralWidget(central)

        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy indicator
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        self.pixel_label = QLabel()
        self.statusBar().addPermanentWidget(self.pixel_label)
        self.statusBar().addPermanentWidget(self.progress)

        self.worker = SegmentationWorker(self)
        self.worker.finished.connect(self._on_segmented)
        self.worker.failed.connect(self._fail)
        self.worker.busy_changed.connect(self.progress.setVisible)
        self.panel.visibility_changed.connect(self._on_visibility)
        self.panel.opacity_changed.connect(self._on_opacity)
        self.panel.threshold_changed.connect(self._on_threshold)
        self.view.hovered.connect(lambda x, y: self.pixel_label.setText(self.session.pixel_info(x, y)))
        self.measuring = MeasureController(self.session, self.view, self.panel.measure_box,
                                           self.statusBar().showMessage)
        self.editing = EditController(self.session, self.view, self.panel.edit_box, self._refresh,
                                      self.statusBar().showMessage)
        self.calibration_tool = PointPairTool(self.view, self._calibrate, self.statusBar().showMessage, "Calibrate")
        self.cases = CaseController(self, self.frame_list, self.panel.volume_box)
        self.outputs = OutputsController(self)
        self._segmenting: int | None = None
        self._build_actions()
        self.panel.set_display(self.session.opacity, self.session.threshold, self.session.default_threshold)
        self.statusBar().showMessage("Ready.")

    def _build_actions(self) -> None:
        def action(text: str, slot: Callable[[], object], shortcut: QKeySequence | str) -> QAction:
            item = QAction(text, self)
            item.setShortcut(QKeySequence(shortcut))
            item.triggered.connect(slot)
            return item

        self.open_frame_action = action("Open frame…", self._choose_frame, QKeySequence.StandardKey.Open)
        self.open_case_action = action("Open case folder…", self._choose_case_folder, "Ctrl+Alt+O")
        self.save_case_action = action("Save case", self.cases.save, "Ctrl+Alt+S")
        self.save_case_as_action = action("Save case as…", lambda: self.cases.save_as(None), "")
        self.next_action = action("Next frame", lambda: self.cases.step(1), QKeySequence.StandardKey.MoveToNextPage)
        self.previous_action = action("Previous frame", lambda: self.cases.step(-1),
                                      QKeySequence.StandardKey.MoveToPreviousPage)
        self.report_action = action("Write report…", lambda: self.outputs.write_report(), "Ctrl+Shift+P")
        self.export_corrections_action = action("Export corrections…", lambda: self.outputs.export_corrections(),
                                                "Ctrl+Shift+E")
        for item in (self.save_case_action, self.save_case_as_action, self.next_action, self.previous_action,
                     self.report_action, self.export_corrections_action):
            item.setEnabled(False)
        self.open_model_action = action("Open model…", self._choose_model, "Ctrl+Shift+O")
        self.save_action = action("Save mask and overlay…", self._choose_save_dir, QKeySequence.StandardKey.Save)
        self.save_action.setEnabled(False)
        self.calibrate_action = action("Calibrate…", self.calibration_tool.start, "Ctrl+K")
        self.calibrate_action.setEnabled(False)
        self.tick_action = action("Depth scale tick interval…", self._choose_tick_interval, "")
        self.add_caliper_action = action("Add caliper", self.measuring.add_tool.start, "Ctrl+L")
        self.delete_caliper_action = action("Delete caliper", self.measuring.delete_selected,
                                            QKeySequence.StandardKey.Delete)
        for item in (self.add_caliper_action, self.delete_caliper_action):
            item.setEnabled(False)
        self.undo_action = self.editing.undo_stack.createUndoAction(self, "Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.editing.undo_stack.createRedoAction(self, "Redo")
        self.redo_action.setShortcut(QKeySequence.StandardKey.Redo)
        self.tool_actions = {tool: action(text, lambda _checked=False, tool=tool: self.editing.set_tool(tool), key)
                             for tool, text, key in (("brush", "Brush", "B"), ("eraser", "Eraser", "E"),
                                                     ("fill", "Fill a closed outline", "F"),
                                                     ("off", "Pan (no editing tool)", "P"))}
        self.reset_action = action("Reset to the model's mask", self.editing.reset, "Ctrl+R")
        self.preferences_action = action("Preferences…", self.open_preferences, QKeySequence.StandardKey.Preferences)
        quit_action = action("Quit", self.close, QKeySequence.StandardKey.Quit)
        fit = action("Fit to window", self.view.fit_to_window, "Ctrl+0")
        actual = action("100 %", self.view.actual_size, "Ctrl+1")
        zoom_in = action("Zoom in", lambda: self.view.zoom_by(WHEEL_STEP), QKeySequence.StandardKey.ZoomIn)
        zoom_out = action("Zoom out", lambda: self.view.zoom_by(1 / WHEEL_STEP), QKeySequence.StandardKey.ZoomOut)

        file_menu = self.menuBar().addMenu("&File")
        file_menu.addActions([self.open_frame_action, self.open_case_action, self.open_model_action])
        file_menu.addSeparator()
        file_menu.addActions([self.save_case_action, self.save_case_as_action, self.save_action])
        file_menu.addSeparator()
        file_menu.addActions([self.report_action, self.export_corrections_action])
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        edit_menu = self.menuBar().addMenu("&Edit")
        edit_menu.addActions([self.undo_action, self.redo_action])
        edit_menu.addSeparator()
        edit_menu.addActions([*self.tool_actions.values(), self.reset_action])
        edit_menu.addSeparator()
        edit_menu.addAction(self.preferences_action)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addActions([fit, actual, zoom_in, zoom_out])
        view_menu.addSeparator()
        view_menu.addActions([self.next_action, self.previous_action])
        self.menuBar().addMenu("&Tools").addActions([self.calibrate_action, self.tick_action, self.add_caliper_action,
                                                     self.delete_caliper_action])
        toolbar = self.addToolBar("Main")
        toolbar.setMovable(False)
        toolbar.addActions([self.open_frame_action, self.open_model_action, self.save_action])
        toolbar.addSeparator()
        toolbar.addActions([fit, actual, zoom_in, zoom_out])
        toolbar.addSeparator()
        toolbar.addActions([self.calibrate_action, self.add_caliper_action])

    # Loading: these raise; the open_* methods below report errors instead.

    def load_model(self, path: Path | str) -> None:
        """Loads a model and re-segments the open frame.

        The settings' precision picks the file (:func:`pipeline.inference.runtime.choose_model`); ONNX
        Runtime's optimised graph is cached (:func:`pipeline.inference.session_cache.default_cache_dir`).

        Raises:
            ModelLoadError: missing file, not ONNX, no valid contract, or INT8 asked for without an INT8 model.
        """
        self.use_segmenter(Segmenter(path, precision=self.settings.precision, cache_dir=default_cache_dir()))

    def reload_model(self) -> bool:
        """Loads the current model again (after a precision change); returns whether it worked (True without one)."""
        return self.segmenter is None or self.open_model(self.segmenter.requested_path)

    def use_segmenter(self, segmenter: Segmenter) -> None:
        """Switches to an already loaded model and re-segments the open frame."""
        self.segmenter = segmenter
        self.session.use_contract(segmenter.contract, self.settings.threshold)
        if self.session.case is not None:
            self.session.case.forget_segmentations()
        self.panel.set_model(segmenter.contract, segmenter.path, self.session.class_colours(), segmenter.choice.reason)
        self.panel.set_display(self.session.opacity, self.session.threshold, self.session.default_threshold)
        contract = segmenter.contract
        log.info("model loaded: %s (%s/%s, classes %s, dataset %s, code %s; %s)", segmenter.path, contract.arch,
                 contract.encoder, ",".join(contract.classes), contract.dataset_version, contract.code_version,
                 segmenter.choice.reason)
        self.statusBar().showMessage(f"Model {segmenter.path.name} loaded.")
        self._refresh()
        self._segment()

    def load_frame(self, path: Path | str) -> None:
        """Opens a frame file, a folder of frames or a case file as the case, and shows its first frame.

        A multi-frame DICOM is a case of its cine frames.

        Raises:
            FrameReadError: the file or folder is missing, unsupported or corrupt.
            CaseFileError: a case file that cannot be read.
        """
        REDACT.add(Path(path))  # its path or name may identify the patient: never in the log
        self.cases.open(Path(path))
        for item in (self.save_case_action, self.save_case_as_action, self.next_action, self.previous_action,
                     self.report_action, self.export_corrections_action):
            item.setEnabled(True)

    def show_case_frame(self, number: int, frame: Frame) -> None:
        """Shows case frame ``number`` (already read), fitted to the window, with its work; segments it if needed."""
        path = self.session.case.frames[number].path
        REDACT.add(path)
        height, width = frame.gray.shape
        self.session.show_case_frame(number, frame, self.settings.tick_mm)
        self.settings.last_folder = path.parent if path.is_file() else path
        self.editing.new_frame()
        log.info("frame opened: %dx%d px, spacing from %s, DICOM region %s", width, height,
                 self.session.calibration.source, "yes" if frame.region_box else "no")
        self.panel.set_frame(path, frame, self.session.calibration)
        for item in (self.calibrate_action, self.add_caliper_action, self.delete_caliper_action):
            item.setEnabled(True)
        self.setWindowTitle(f"{self.session.case.frames[number].label} — {APP_TITLE}")
        self._refresh(fit=True)
        if self.segmenter is None:
            self.statusBar().showMessage("No model loaded: use File › Open model… to segment this frame.")
        if self.session.segmentation is None:
            self._segment()

    # User actions: errors are reported, and the window stays as it was.

    def open_frame(self, path: Path | str) -> bool:
        """Opens a frame (File › Open frame…, drag and drop); returns whether it worked."""
        if not self.cases.ask_to_save():
            return False
        try:
            self.load_frame(path)
        except (FrameReadError, CaseFileError) as error:
            self._fail(str(error))
            return False
        return True

    def open_model(self, path: Path | str) -> bool:
        """Opens a model (File › Open model…); returns whether it worked."""
        try:
            self.load_model(path)
        except ModelLoadError as error:
            self._fail(str(error))
            return False
        return True

    def save_results(self, out_dir: Path | str) -> tuple[Path, Path] | None:
        """Writes the mask and overlay PNGs into ``out_dir``; returns their paths, or None on error or refusal.

        Files of the same name already there are replaced only when the user confirms it.
        """
        try:
            existing = [path for path in self.session.save_paths(Path(out_dir)) if path.exists()]
            names = " and ".join(path.name for path in existing)
            if existing and not self.confirm(f"{names} already exist in {out_dir}. Replace them?"):
                self.statusBar().showMessage("Not saved: the files already exist.")
                return None
            paths = self.session.save(Path(out_dir))
        except (ValueError, OSError) as error:
            self._fail(f"{out_dir}: cannot save ({error})")
            return None
        self.statusBar().showMessage(f"Saved {paths[0].name} and {paths[1].name} in {paths[0].parent}.")
        return paths

    def _choose_frame(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open frame", self._start_dir(), FRAME_FILTER)
        if path:
            self.open_frame(path)

    def _choose_case_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of frames as a case", self._start_dir())
        if folder:
            self.open_frame(folder)

    def _choose_model(self) -> None:
        start = str(self.segmenter.path.parent) if self.segmenter else str(Path.cwd())
        path, _ = QFileDialog.getOpenFileName(self, "Open model", start, f"ONNX models (*{MODEL_SUFFIX})")
        if path:
            self.open_model(path)

    def _choose_save_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save mask and overlay into", self._start_dir())
        if folder:
            self.save_results(folder)

    def _start_dir(self) -> str:
        path = self.session.frame_path
        return str(path.parent if path else (self.settings.last_folder or Path.cwd()))

    def say(self, message: str) -> None:
        """Shows a one-line message in the status bar."""
        self.statusBar().showMessage(message)

    def report(self, message: str) -> None:
        """Reports a one-line error (logged, status bar, dialog); the window stays as it was."""
        self._fail(message)

    def confirm(self, question: str) -> bool:
        """Asks a yes/no question (No by default)."""
        return QMessageBox.question(self, APP_TITLE, question,
                                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                    QMessageBox.StandardButton.No) == QMessageBox.StandardButton.Yes

    def refresh(self) -> None:
        """Redraws everything from the session."""
        self._refresh()

    def _choose_tick_interval(self) -> None:
        value, accepted = QInputDialog.getDouble(self, "Depth scale", "mm between the depth scale's longer ticks:",
                                                 self.settings.tick_mm, *TICK_RANGE_MM, 2)
        if accepted:
            self.set_tick_interval(value)

    def set_tick_interval(self, tick_mm: float) -> None:
        """Keeps the depth scale's tick interval (persisted) and recalibrates the open frame with it."""
        self.settings.tick_mm = tick_mm
        calibration = self.session.recalibrate(tick_mm)
        if calibration is not None:
            self.panel.set_frame(self.session.frame_path, self.session.frame, calibration)
            self._refresh()
        self.statusBar().showMessage(f"Depth scale: {tick_mm:g} mm between the longer ticks.")

    def open_preferences(self) -> PreferencesDialog:
        """Edit › Preferences…: PSA density threshold, tick interval, class colours (:mod:`app.preferences`);
        OK applies and persists them, Cancel changes nothing. Returns the open dialog."""
        return open_preferences(self)

    # Drag and drop: a frame file opens it, an .onnx file loads the model.

    @staticmethod
    def dropped_path(mime: QMimeData) -> Path | None:
        """The single local file in a drag, or None."""
        urls = mime.urls() if mime.hasUrls() else []
        return Path(urls[0].toLocalFile()) if len(urls) == 1 and urls[0].isLocalFile() else None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        """Accepts a single local file."""
        if self.dropped_path(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        """Opens the dropped frame, or loads the dropped model."""
        path = self.dropped_path(event.mimeData())
        if path is None:
            return
        event.acceptProposedAction()
        if path.suffix.lower() == MODEL_SUFFIX:
            self.open_model(path)
        else:
            self.open_frame(path)

    # Segmentation and display.

    def _segment(self) -> None:
        if self.segmenter is not None and self.session.frame is not None:
            self._started = time.perf_counter()
            self._segmenting = self.session.frame_number
            self.statusBar().showMessage("Segmenting…")
            self.worker.submit(self.segmenter, self.session.frame.gray, self.session.frame.region_box)

    def _on_segmented(self, segmentation: Segmentation) -> None:
        if self._segmenting != self.session.frame_number:  # the user moved on meanwhile: keep it for later
            if self.session.case is not None and self._segmenting is not None:
                self.session.case.keep_segmentation(self._segmenting, segmentation)
            return
        self.session.set_segmentation(segmentation)
        self._refresh()
        self.statusBar().showMessage(f"Segmented in {time.perf_counter() - self._started:.2f} s.")

    def _calibrate(self, start: Point, end: Point) -> None:
        """Asks for the true length of the picked line, then applies the manual calibration and re-measures."""
        distance_mm = ask_distance_mm(self, ((end[0] - start[0]) ** 2 + (end[1] - start[1]) ** 2) ** 0.5)
        if distance_mm is None:
            self.statusBar().showMessage("Calibrate: cancelled.")
            return
        try:
            calibration = self.session.calibrate_manually(start, end, distance_mm)
        except ValueError as error:
            self._fail(f"Calibration not applied: {error}")
            return
        log.info("manual calibration: %.5f mm/px", calibration.spacing_mm[0])
        self.panel.set_frame(self.session.frame_path, self.session.frame, calibration)
        self._refresh()
        self.statusBar().showMessage(f"Calibrated: {calibration.spacing_mm[0]:.4f} mm per px ({calibration.note}).")

    def _on_visibility(self, index: int, visible: bool) -> None:
        self.session.set_visible(index, visible)
        self._refresh()

    def _on_opacity(self, value: float) -> None:
        self.session.set_opacity(value)
        self.settings.opacity = self.session.opacity
        self._refresh()

    def _on_threshold(self, value: float) -> None:
        self.session.set_threshold(value)
        self.settings.threshold = self.session.threshold
        self._refresh()

    def _refresh(self, fit: bool = False) -> None:
        """Redraws the overlay and the areas from the session."""
        if self.session.frame is not None:
            self.view.set_image(self.session.overlay(), fit=fit)
        self.panel.set_areas(self.session.areas())
        self.measuring.refresh()
        self.cases.refresh()
        self.save_action.setEnabled(self.session.segmentation is not None)

    def _fail(self, message: str) -> None:
        log.warning("%s", message)
        self.statusBar().showMessage(message)
        self._report_error(message)

    def _error_dialog(self, message: str) -> None:
        log_file = current_log_file()
        details = f"\n\nDetails are in the log: {log_file}" if log_file else ""
        QMessageBox.critical(self, APP_TITLE, message + details)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        """Offers to save the case's work, then waits for a running segmentation before closing."""
        if not self.cases.ask_to_save():
            event.ignore()
            return
        self.cases.discard()
        self.worker.shutdown()
        self.outputs.shutdown()
        super().closeEvent(event)
