"""The README's pictures of the workstation, taken by the app itself (``python -m app.screenshots``).

``python -m app.screenshots CASE_FOLDER --model models/model.onnx --out docs [--psa 6.5] [--force]``

Opens CASE_FOLDER (a transverse and a sagittal frame of one patient, the plane in their file
names) as a case, uses both frames for the volume, enters the PSA, accepts, and saves:

- ``app-measuring.png``: the sagittal frame with its length caliper and the Volume box;
- ``app-editing.png``: the transverse frame after a brush stroke (the Edit box, the undo stack);
- ``report.pdf`` and ``report.json``: the report of the case, as File › Write report… writes it;
- ``report-page1.png``: the PDF's first page, drawn by poppler's ``pdftoppm`` when it is
  installed (``apt-get install poppler-utils``; Qt's own PDF renderer is not in the wheels).

Files of those names already in the folder are replaced only with ``--force``. It works
offscreen (``QT_QPA_PLATFORM=offscreen``). Exit 0 when everything was written, 2 otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QEventLoop, QPointF, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QScrollArea

from app.case_file import CaseFileError
from app.main_window import MainWindow
from pipeline.imaging.frames import FrameReadError
from pipeline.inference.predictor import ModelLoadError

OUTPUTS = ("app-measuring.png", "app-editing.png", "report.pdf", "report.json", "report-page1.png")
WINDOW_SIZE = (1400, 900)
WAIT_MS = 300_000
CASE_ID = "DEMO-0001"
PAGE_DPI = 110


def wait_until(condition: Callable[[], bool], timeout_ms: int = WAIT_MS) -> bool:
    """Runs the event loop until ``condition()`` holds (checked every 50 ms) or ``timeout_ms`` passes."""
    loop = QEventLoop()
    timer = QTimer()
    timer.timeout.connect(lambda: loop.quit() if condition() else None)
    timer.start(50)
    QTimer.singleShot(timeout_ms, loop.quit)
    if not condition():
        loop.exec()
    timer.stop()
    return condition()


def show_frame(window: MainWindow, number: int) -> None:
    """Shows case frame ``number`` and waits for its segmentation."""
    window.cases.go_to(number)
    if not wait_until(lambda: not window.worker.busy and window.session.segmentation is not None):
        raise RuntimeError(f"frame {number + 1} was not segmented in {WAIT_MS // 1000} s")
    window.view.fit_to_window()
    QApplication.processEvents()


def brush_stroke(window: MainWindow, points: Sequence[tuple[float, float]], radius_px: int) -> None:
    """A real mouse drag of the brush through frame points (x, y) px."""
    window.tool_actions["brush"].trigger()
    window.panel.edit_box.radius_box.setValue(radius_px)
    viewport = window.view.viewport()
    screen = [window.view.mapFromScene(QPointF(x, y)) for x, y in points]
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, screen[0])
    for point in screen[1:]:
        QTest.mouseMove(viewport, point)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, screen[-1])


def grab(window: MainWindow, path: Path) -> Path:
    QApplication.processEvents()
    if not window.grab().save(str(path), "PNG"):
        raise OSError(f"{path}: cannot write the screenshot")
    print(path)
    return path


def take(case_folder: Path, model: Path, out: Path, psa: float) -> list[Path]:
    """Drives a window through the case and writes the pictures and the report into ``out``; returns them."""
    errors: list[str] = []
    window = MainWindow(report_error=errors.append)
    window.resize(*WINDOW_SIZE)
    window.load_model(model)
    window.show()
    window.load_frame(case_folder)
    written = []
    try:
        planes = {}
        for number in range(len(window.session.case.frames)):
            show_frame(window, number)
            plane = window.session.plane[0]
            if plane is not None and plane not in planes:
                planes[plane] = number
                window.cases.use_for_volume()
        if set(planes) != {"transverse", "sagittal"}:
            raise RuntimeError(f"{case_folder}: needs a transverse and a sagittal frame (found {sorted(planes)})")
        window.panel.volume_box.psa_box.setValue(psa)
        window.cases.accept()
        if not window.session.accepted:
            raise RuntimeError(f"the measurements could not be accepted: {errors[-1] if errors else ''}")
        show_frame(window, planes["sagittal"])
        written.append(grab(window, out / "app-measuring.png"))

        window.session.set_case_id(CASE_ID)
        pdf = out / "report.pdf"
        if not window.outputs.write_report(pdf, replace=True):  # main() checked that replacing is allowed
            raise RuntimeError(f"the report was not written: {errors[-1] if errors else ''}")
        wait_until(lambda: window.outputs.pending is None)
        if errors:
            raise RuntimeError(errors[-1])
        written += [pdf, pdf.with_suffix(".json")]

        show_frame(window, planes["transverse"])
        masks = window.session.masks()
        rows, columns = masks[0].nonzero()
        right, middle = int(columns.max()), int(rows.mean())
        brush_stroke(window, [(right - 10.0, middle - 20.0), (right + 25.0, middle), (right - 10.0, middle + 20.0)],
                     12)
        scroll = window.findChild(QScrollArea)
        if scroll is not None:  # the side panel scrolls: show the Edit box with its undo and redo
            scroll.ensureWidgetVisible(window.panel.edit_box)
        written.append(grab(window, out / "app-editing.png"))
    finally:
        window.cases.discard()  # the pictures are taken: the case is not saved
        window.close()
        window.deleteLater()
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", str(PAGE_DPI), "-f", "1", "-l", "1", "-singlefile", str(pdf),
                        str(out / "report-page1")], check=True)
        written.append(out / "report-page1.png")
        print(written[-1])
    else:
        print("pdftoppm not found: no report-page1.png (apt-get install poppler-utils)", file=sys.stderr)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("case", type=Path, help="a folder with a transverse and a sagittal frame of one patient")
    parser.add_argument("--model", type=Path, required=True, help="the exported ONNX model")
    parser.add_argument("--out", type=Path, required=True, help="an existing folder for the pictures and the report")
    parser.add_argument("--psa", type=float, default=6.5, help="serum PSA, ng/mL (default 6.5)")
    parser.add_argument("--force", action="store_true", help="replace the pictures and report already in --out")
    args = parser.parse_args(argv)
    application = QApplication.instance() or QApplication([sys.argv[0]])
    application.setStyle("Fusion")
    try:
        if not args.out.is_dir():
            raise OSError(f"{args.out}: no such folder")
        existing = [name for name in OUTPUTS if (args.out / name).exists()]
        if existing and not args.force:
            raise OSError(f"{args.out}: {', '.join(existing)} already there (--force replaces them)")
        take(args.case, args.model, args.out, args.psa)
    except (ModelLoadError, FrameReadError, CaseFileError, OSError, RuntimeError, ValueError,
            subprocess.CalledProcessError) as error:
        print(f"screenshots: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
