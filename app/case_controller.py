"""Wires the case: opening a folder or a multi-frame file, moving between its frames, the Volume
box, and saving the work to the case file (:mod:`app.case_file`).

A case file found beside what is opened (:func:`app.case_file.default_case_path`) is read, so
reopening a case shows the work done. The app writes only case files: the one it read or
wrote itself, or, after the user confirms it, the one they chose to replace.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from app.case import Case, first_readable_frame
from app.case_file import CASE_SUFFIX, CaseFileError, default_case_path, read_case, save_case
from app.frame_list import FrameList
from app.volume_panel import VolumePanel
from pipeline.imaging.frames import FrameReadError

if TYPE_CHECKING:
    from app.main_window import MainWindow

log = logging.getLogger(__name__)
CASE_FILTER = f"TRUS cases (*{CASE_SUFFIX});;All files (*)"


def frame_marks(plane: str | None, edited: bool, volume_planes: list[str], tags: tuple[str, ...] = ()) -> str:
    """A frame's second line in the list: its plane, 'edited', what it gives the volume, and its tags."""
    parts = [plane or "plane ?"]
    if edited:
        parts.append("edited")
    parts += [f"volume ({'W, H' if p == 'transverse' else 'L'})" for p in volume_planes]
    parts += [f"#{tag}" for tag in tags]
    return " · ".join(parts)


class CaseController(QObject):
    """The open case of ``window``: its frame list, navigation, Volume box and case file.

    Attributes:
        frame_list: the thumbnails.
        volume_panel: the Volume box.
        case_path: the case file this case is saved to (one the app read or wrote), or None.
    """

    def __init__(self, window: MainWindow, frame_list: FrameList, volume_panel: VolumePanel) -> None:
        super().__init__(window)
        self.window, self.frame_list, self.volume_panel = window, frame_list, volume_panel
        self.case_path: Path | None = None
        self._saved_revision = 0
        frame_list.frame_chosen.connect(self.go_to)
        volume_panel.use_frame.connect(self.use_for_volume)
        volume_panel.psa_changed.connect(self.set_psa)
        volume_panel.accept.connect(self.accept)
        window.measuring.changed.connect(self.refresh)  # a caliper or the plane changes the volume and the marks
        window.panel.measure_box.tags_edited.connect(self.set_tags)

    @property
    def case(self) -> Case | None:
        return self.window.session.case

    @property
    def unsaved(self) -> bool:
        """Whether the case has work not yet in its case file."""
        return self.case is not None and self.case.revision != self._saved_revision

    def open(self, path: Path) -> None:
        """Opens a folder, a frame file or a case file as the case, with the saved work if there is any.

        Raises:
            FrameReadError: nothing readable to open. CaseFileError: a case file that cannot be read.
        """
        case, saved = read_case(Path(path))
        first = first_readable_frame(case)  # before anything changes: a case with no readable frame is refused
        self.window.session.open_case(case)
        self.case_path = saved
        self._saved_revision = case.revision
        self.frame_list.set_case(case, case.read)
        log.info("case opened: %d frame(s), saved work %s", len(case.frames), "found" if saved else "none")
        self.go_to(first)

    def go_to(self, number: int) -> bool:
        """Shows case frame ``number``; returns whether it could be read (errors are reported)."""
        case = self.case
        if case is None or not 0 <= number < len(case.frames):
            return False
        try:
            frame = case.read(number)
        except FrameReadError as error:
            if self.window.session.frame_number is not None:
                self.frame_list.select(self.window.session.frame_number)  # the list shows the frame still open
            self.window.report(str(error))
            return False
        self.frame_list.select(number)
        self.window.show_case_frame(number, frame)
        return True

    def step(self, delta: int) -> None:
        """Moves ``delta`` frames on, past frames that cannot be read (reported); nothing at either end."""
        session = self.window.session
        if self.case is None or session.frame_number is None:
            return
        number = session.frame_number + delta
        while 0 <= number < len(self.case.frames) and not self.go_to(number):
            number += 1 if delta > 0 else -1

    def refresh(self) -> None:
        """Updates the open frame's marks in the list and the Volume box."""
        session, case = self.window.session, self.case
        if case is None:
            self.volume_panel.show_figures(None, "", False, None)
            return
        if session.frame_number is not None:
            planes = [p for p, n in sorted(case.volume_frames.items()) if n == session.frame_number]
            self.frame_list.show_marks(session.frame_number,
                                       frame_marks(session.plane[0], session.edited is not None, planes, session.tags))
        self.window.panel.measure_box.show_tags(session.tags)
        used = [f"{plane} frame {number + 1}" for plane, number in sorted(case.volume_frames.items(), reverse=True)]
        said = "From " + " and ".join(used) if used else "No frames chosen for the volume yet."
        self.volume_panel.show_figures(session.volume(), said, session.accepted, case.accepted_at, case.psa_ng_per_ml)

    def set_tags(self, text: str) -> None:
        """Tags the open frame (the Measurements box's tag field)."""
        try:
            self.window.session.set_tags(text)
        except ValueError as error:
            self.window.report(f"Tags not changed: {error}")
        self.refresh()

    def use_for_volume(self) -> None:
        try:
            plane = self.window.session.use_for_volume()
        except ValueError as error:
            self.window.report(str(error))
            return
        self.window.refresh()
        self.window.say(f"This frame now gives the volume its {'width and height' if plane == 'transverse' else 'length'}.")

    def set_psa(self, psa: float | None) -> None:
        try:
            self.window.session.set_psa(psa)
        except ValueError as error:
            self.window.report(str(error))
        self.refresh()

    def accept(self) -> None:
        try:
            figures = self.window.session.accept()
        except ValueError as error:
            self.window.report(f"Not accepted: {error}")
            return
        log.info("measurements accepted")
        self.refresh()
        self.window.say(f"Accepted: {figures.volume_ml:.1f} mL.")

    def ask_case_id(self) -> str | None:
        """Asks for the case identifier used in reports; None when cancelled or empty."""
        case = self.case
        if case is None:
            return None
        text, accepted = QInputDialog.getText(
            self.window, "Case identifier", "Case identifier for the report (accession number or study ID, "
                                            "never the patient's name):", text=case.case_id)
        if not accepted or not text.strip():
            return None
        self.window.session.set_case_id(text.strip())
        return text.strip()

    def save(self) -> Path | None:
        """Saves to the case file (asking where, the first time); returns it, or None."""
        if self.case is None:
            return None
        if self.case_path is None:
            return self.save_as(None)
        return self._write(self.case_path)

    def save_as(self, path: Path | None) -> Path | None:
        """Saves the case to ``path`` (None: ask, starting beside the images); an existing file the app did
        not write is replaced only when the user confirms it."""
        if self.case is None:
            return None
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self.window, "Save case", str(default_case_path(self.case.source)),
                                                    CASE_FILTER)
            if not chosen:
                return None
            path = Path(chosen if chosen.endswith(CASE_SUFFIX) else chosen + CASE_SUFFIX)
        path = Path(path)
        if path.exists() and path != self.case_path and not self.window.confirm(
                f"{path.name} already exists in {path.parent}. Replace it?"):
            self.window.say("Case not saved: the file already exists.")
            return None
        return self._write(path)

    def _write(self, path: Path) -> Path | None:
        case = self.case
        if case is None:
            return None
        session = self.window.session
        if session.frame_number is not None:
            case.work[session.frame_number] = session.current_work()
        case.classes = session.classes  # the channels of the edited masks
        try:
            save_case(case, path)
        except OSError as error:
            self.window.report(f"{path}: cannot save the case ({error})")
            return None
        self.case_path, self._saved_revision = path, case.revision
        self.window.say(f"Case saved: {path.name}.")
        log.info("case saved")
        return path

    def ask_to_save(self) -> bool:
        """Before closing the case: offers to save unsaved work; returns False when the user cancels."""
        if not self.unsaved:
            return True
        answer = QMessageBox.question(
            self.window, "Unsaved work", "Save the work on this case before closing it?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer == QMessageBox.StandardButton.Discard:
            return True  # given up only once another case opens or the window closes (see discard)
        return self.save() is not None

    def discard(self) -> None:
        """The user gave up the unsaved work (the window is closing): not asked about again."""
        if self.case is not None:
            self._saved_revision = self.case.revision


__all__ = ["CaseController", "CaseFileError", "frame_marks"]
