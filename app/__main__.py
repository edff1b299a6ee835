"""Command line of the desktop app (``trus-app`` and ``python -m app``).

``trus-app [CASE] [--model PATH] [--precision auto|int8|fp32] [--screenshot OUT.png]``

CASE is a frame file, a multi-frame DICOM, a folder of frames or a case file. The model and the
case named on the command line are checked before the Qt application starts, so a bad file gives
a one-line error on stderr and exit code 2. ``--precision`` overrides (and does not change) the
Preferences' model precision. With ``--screenshot`` the app segments the case's
first frame, saves a picture of the window to OUT.png, prints its path and
exits (works with ``QT_QPA_PLATFORM=offscreen``). Everything is logged to a rotating file in the
user's log folder (see :mod:`app.log_file`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from app.case import first_readable_frame
from app.case_file import CaseFileError, read_case
from app.log_file import REDACT, configure_file_logging
from app.settings import AppSettings
from app.main_window import MainWindow
from pipeline.imaging.frames import FrameReadError
from pipeline.inference.predictor import ModelLoadError, Segmenter
from pipeline.inference.runtime import PRECISIONS
from pipeline.inference.session_cache import default_cache_dir
from pipeline.layout import MODEL_FILE

PROG = "trus-app"
EXIT_ERROR = 2
WINDOW_SIZE = (1280, 800)
SEGMENT_TIMEOUT_MS = 300_000
log = logging.getLogger("app")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses the command line (argparse exits 2 on a usage error)."""
    parser = argparse.ArgumentParser(prog=PROG, description="View and save a model's segmentation of TRUS frames.")
    parser.add_argument("frame", nargs="?", type=Path, metavar="CASE",
                        help="a case to open: a frame (PNG, JPEG, BMP, TIFF or DICOM, multi-frame included), "
                             "a folder of frames or a case file")
    parser.add_argument("--model", type=Path, default=None, metavar="PATH",
                        help=f"the exported ONNX model (default: {MODEL_FILE})")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="which model runs: auto (INT8 where this CPU runs it fast), int8 or fp32 "
                             "(default: the Preferences' choice)")
    parser.add_argument("--screenshot", type=Path, metavar="OUT.png",
                        help="segment the case's first frame, save a picture of the window to OUT.png and exit")
    args = parser.parse_args(argv)
    if args.screenshot is not None and args.frame is None:
        parser.error("--screenshot needs a CASE")
    return args


def _fail(message: str) -> int:
    log.error("%s", message)
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the app; returns the process exit code (0 ok, 2 bad input)."""
    args = parse_args(argv)
    log_path = configure_file_logging()
    log.info("%s started (log %s)", PROG, log_path)
    if args.frame is not None:
        REDACT.add(args.frame)
    model_path: Path = args.model or MODEL_FILE
    # Without --model, a missing default model is not fatal: the window opens and asks for one.
    model_optional = args.model is None and args.screenshot is None and not model_path.exists()
    try:
        settings = AppSettings()
        precision = args.precision or settings.precision
        segmenter = None if model_optional else Segmenter(model_path, precision=precision,
                                                          cache_dir=default_cache_dir())
        if args.frame is not None:
            first_readable_frame(read_case(args.frame)[0])
    except (ModelLoadError, FrameReadError, CaseFileError) as error:
        return _fail(str(error))

    application = QApplication.instance() or QApplication([sys.argv[0]])
    application.setApplicationName(PROG)
    application.setStyle("Fusion")
    if args.screenshot is not None:
        assert segmenter is not None  # guaranteed by model_optional
        return _screenshot(segmenter, args.frame, args.screenshot)
    window = MainWindow()
    window.resize(*WINDOW_SIZE)
    if segmenter is not None:
        window.use_segmenter(segmenter)
    else:
        window.statusBar().showMessage(f"No model at {model_path}: use File › Open model…")
    window.show()
    if args.frame is not None:
        window.open_frame(args.frame)
    return application.exec()


def _screenshot(segmenter: Segmenter, frame_path: Path, out: Path) -> int:
    """Segments a case's first frame in a fixed-size window and saves ``window.grab()`` to ``out``."""
    errors: list[str] = []
    window = MainWindow(report_error=errors.append)
    window.resize(*WINDOW_SIZE)
    window.use_segmenter(segmenter)
    window.show()
    loop = QEventLoop()

    def quit_when_idle(busy: bool) -> None:
        if not busy:
            loop.quit()

    window.worker.busy_changed.connect(quit_when_idle)
    try:
        window.load_frame(frame_path)
    except (FrameReadError, CaseFileError) as error:
        window.close()
        return _fail(str(error))
    if window.worker.busy:
        QTimer.singleShot(SEGMENT_TIMEOUT_MS, loop.quit)
        loop.exec()
    QApplication.processEvents()
    try:
        if window.session.segmentation is None:
            return _fail(errors[0] if errors else f"{frame_path}: segmentation timed out")
        window.view.fit_to_window()
        if not window.grab().save(str(out), "PNG"):
            return _fail(f"{out}: cannot write the screenshot")
    finally:
        window.close()
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
