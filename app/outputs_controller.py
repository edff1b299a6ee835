"""File › Write report… and File › Export corrections…: the dialogs around :mod:`app.case_outputs`.

The PDF is drawn by :class:`app.report_pdf.ReportWriter` on a background thread; the window
says when it is written or why it was not. Nothing is overwritten without the user's consent:
an existing report, or a corrections folder written earlier, is replaced only when they confirm;
any other folder that is not empty is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from app.case_outputs import CaseOutputError, case_report, corrected_frames
from app.report_pdf import ReportWriter
from pipeline.corrections import CorrectionsError, write_corrections
from pipeline.files.output_folder import MARKER, OutputFolderError

if TYPE_CHECKING:
    from app.main_window import MainWindow

log = logging.getLogger(__name__)
PDF_FILTER = "PDF reports (*.pdf)"


def report_file_name(case_id: str) -> str:
    """``<case id>-report.pdf`` with characters that file systems refuse replaced by ``_``."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in case_id.strip()) or "case"
    return f"{safe}-report.pdf"


class OutputsController(QObject):
    """Writes the open case's report and exports its corrected frames, asking where and reporting the result."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.writer = ReportWriter(self)
        self.writer.finished.connect(self._report_written)
        self.writer.failed.connect(self._report_failed)
        self.pending: Path | None = None

    def _case_folder(self) -> Path:
        case = self.window.session.case
        assert case is not None
        return case.source if case.source.is_dir() else case.source.parent

    def write_report(self, pdf_path: Path | None = None, replace: bool | None = None) -> bool:
        """Builds the report of the accepted measurements and starts writing it (asking for the case identifier
        and the file when needed); returns whether writing started.

        ``replace``: whether an existing report of that name is replaced (None: ask the user).
        """
        window, session = self.window, self.window.session
        if self.pending is not None:
            window.say("A report is being written; wait for it to finish.")
            return False
        if window.segmenter is None or session.case is None:
            window.report("Write report: open a model and a case first.")
            return False
        if not session.accepted:
            window.report("Write report: accept the measurements first (Volume › Accept); the report states "
                          "accepted figures only.")
            return False
        if not session.case.case_id.strip() and window.cases.ask_case_id() is None:
            window.say("Report not written: it needs a case identifier.")
            return False
        try:
            report = case_report(session, window.segmenter.contract, window.segmenter.path.name,
                                 session.class_colours())
        except CaseOutputError as error:
            window.report(f"Write report: {error}")
            return False
        if pdf_path is None:
            chosen, _ = QFileDialog.getSaveFileName(window, "Write report",
                                                    str(self._case_folder() / report_file_name(report.case_id)),
                                                    PDF_FILTER)
            if not chosen:
                return False
            pdf_path = Path(chosen if chosen.lower().endswith(".pdf") else chosen + ".pdf")
        pdf_path = Path(pdf_path)
        existing = [path for path in (pdf_path, pdf_path.with_suffix(".json")) if path.exists()]
        overwrite = bool(existing)
        if existing and not (replace if replace is not None else window.confirm(
                f"{' and '.join(p.name for p in existing)} already exist in {pdf_path.parent}. Replace them?")):
            window.say("Report not written: the files already exist.")
            return False
        self.pending = pdf_path
        window.say(f"Writing the report {pdf_path.name}…")
        self.writer.submit(report, pdf_path, overwrite)
        return True

    def _report_written(self, pdf_path: Path, json_path: Path) -> None:
        self.pending = None
        log.info("report written")
        self.window.say(f"Report written: {Path(pdf_path).name} and {Path(json_path).name} in {Path(pdf_path).parent}.")

    def _report_failed(self, message: str) -> None:
        self.pending = None
        self.window.report(message)

    def export_corrections(self, folder: Path | None = None) -> Path | None:
        """Writes the case's edited frames as a Roboflow COCO upload into ``folder`` (None: ask); returns it, or None.

        An empty or new folder is written; a corrections folder written earlier is replaced when the user
        confirms; any other folder is refused with its name.
        """
        window = self.window
        try:
            frames = corrected_frames(window.session)
        except CaseOutputError as error:
            window.report(f"Export corrections: {error}")
            return None
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(window, "Export corrections into an empty folder",
                                                      str(self._case_folder()))
            if not chosen:
                return None
            folder = Path(chosen)
        folder = Path(folder)
        earlier = (folder / MARKER).is_file()
        if earlier and not window.confirm(f"{folder} holds corrections exported earlier. Replace them?"):
            window.say("Corrections not exported: the folder holds earlier ones.")
            return None
        try:
            written = write_corrections(folder, frames, force=earlier)
        except (CorrectionsError, OutputFolderError, OSError) as error:
            window.report(f"Export corrections: {error}")
            return None
        log.info("corrections exported: %d frame(s)", len(frames))
        window.say(f"Exported {len(frames)} corrected frame(s) to {written}. Send them with "
                   f"trus upload-corrections {written} --workspace W --project P.")
        return written

    def shutdown(self) -> None:
        """Waits for a report being written (the window is closing)."""
        self.writer.shutdown()
