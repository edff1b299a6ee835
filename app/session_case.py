"""The case side of :class:`app.session.Session` (no Qt): moving between a case's frames keeps each
frame's work; the volume, the PSA density and their acceptance.

:class:`CaseSession` is mixed into ``Session``; it uses the session's frame, masks, calipers and
calibration (see that class for the attributes).
"""

from __future__ import annotations

from datetime import datetime

from app.case import Case, FrameWork, parse_tags
from app.case_volume import VolumeFigures, volume_figures
from pipeline.imaging.calibration import MANUAL
from pipeline.imaging.depth_scale import TICK_MM
from pipeline.imaging.frames import Frame
from pipeline.inference.gland_size import check_psa


class CaseSession:
    """The case methods of :class:`app.session.Session`."""

    def open_case(self, case: Case) -> None:
        """Adopts a newly opened case; no frame is shown until :meth:`show_case_frame`."""
        self.case = case
        self.frame_number = None
        self.frame_path = self.frame = self.calibration = self.segmentation = None
        self.user_plane, self.calipers, self.edited, self.tags = None, [], None, ()

    def current_work(self) -> FrameWork:
        """The open frame's work, as :class:`app.case.FrameWork` (what is kept when the user moves on)."""
        return FrameWork(self.user_plane, list(self.calipers), None if self.edited is None else self.edited.copy(),
                         self.calibration, self.tags)

    def work_on(self, number: int) -> FrameWork | None:
        """The work on case frame ``number`` (the open one's as it is now), or None if never opened."""
        if self.case is None:
            return None
        return self.current_work() if number == self.frame_number else self.case.work.get(number)

    def show_case_frame(self, number: int, frame: Frame, tick_mm: float = TICK_MM) -> None:
        """Keeps the open frame's work and shows case frame ``number`` (read by the caller) with its own work.

        Its kept model output, if any, is used again; else it is pending until :meth:`set_segmentation`.

        Raises:
            ValueError: no case is open, or no such frame.
        """
        if self.case is None or not 0 <= number < len(self.case.frames):
            raise ValueError(f"no frame {number + 1} in the open case")
        if self.frame_number is not None:
            self.case.work[self.frame_number] = self.current_work()
        self.set_frame(self.case.frames[number].path, frame, tick_mm)
        self.frame_number = number
        work = self.case.work.get(number)
        if work is not None:
            if work.calibration is not None and work.calibration.source == MANUAL:
                self.calibration = work.calibration
            self.user_plane, self.calipers, self.tags = work.user_plane, list(work.calipers), work.tags
            if work.edited is not None and work.edited.shape[1:] == frame.gray.shape:
                self.edited = work.edited.copy()
        kept = self.case.segmentation(number)
        if kept is not None:
            self.set_segmentation(kept)

    def set_tags(self, text: str) -> tuple[str, ...]:
        """Tags the open frame from a comma-separated text (:func:`app.case.parse_tags`); returns the tags.
        Tags change no measurement: the acceptance stays.

        Raises:
            ValueError: no frame is open, or a tag is too long.
        """
        if self.frame is None:
            raise ValueError("no frame is open")
        tags = parse_tags(text)
        if tags != self.tags:
            self.tags = tags
            if self.case is not None:
                self.case.changed()
        return tags

    def _edited_frame(self) -> None:
        """An edit on the open frame: measurements that use it are no longer accepted."""
        if self.case is None:
            return
        self.case.changed()
        if self.frame_number in self.case.volume_frames.values():
            self.case.clear_acceptance()

    def use_for_volume(self) -> str:
        """Measures the volume on the open frame's plane with this frame; returns the plane.

        Raises:
            ValueError: no case frame is open, or its plane is unknown.
        """
        plane = self.plane[0]
        if self.case is None or self.frame_number is None:
            raise ValueError("open a case frame first")
        if plane is None:
            raise ValueError("the frame's plane is unknown: choose transverse or sagittal first")
        if self.case.volume_frames.get(plane) != self.frame_number:
            self.case.volume_frames[plane] = self.frame_number
            self.case.clear_acceptance()
        return plane

    def set_psa(self, psa_ng_per_ml: float | None) -> None:
        """The serum PSA (ng/mL, >= 0) or None; a change clears the acceptance.

        Raises:
            ValueError: no case is open, or a negative or non-finite PSA.
        """
        if self.case is None:
            raise ValueError("open a case first")
        if psa_ng_per_ml is not None:
            psa_ng_per_ml = check_psa(psa_ng_per_ml, self.psa_threshold)[0]
        if psa_ng_per_ml != self.case.psa_ng_per_ml:
            self.case.psa_ng_per_ml = psa_ng_per_ml
            self.case.clear_acceptance()

    def volume(self) -> VolumeFigures | None:
        """The case's diameters, volume and PSA density as they stand (None without a case)."""
        if self.case is None:
            return None
        frames = self.case.volume_frames
        works = {plane: self.work_on(frames[plane]) if plane in frames else None for plane in ("transverse", "sagittal")}
        return volume_figures(works["transverse"], works["sagittal"], self.case.psa_ng_per_ml, self.psa_threshold)

    def set_case_id(self, case_id: str) -> None:
        """Names the case for reports (an accession number or study ID, never a patient's name)."""
        if self.case is not None and case_id != self.case.case_id:
            self.case.case_id = case_id
            self.case.changed()

    def accept(self) -> VolumeFigures:
        """The user accepts the measurements as they stand.

        Raises:
            ValueError: no case, or the volume is not complete (the message says what is missing).
        """
        figures = self.volume()
        if figures is None or figures.volume_ml is None:
            raise ValueError(figures.missing if figures is not None else "open a case first")
        self.case.accepted_at = datetime.now().astimezone().isoformat(timespec="seconds")
        self.case.accepted_figures = figures.fingerprint()
        self.case.changed()
        return figures

    @property
    def accepted(self) -> bool:
        """Whether the user accepted the measurements and nothing changed since."""
        if self.case is None or self.case.accepted_at is None:
            return False
        figures = self.volume()
        return figures is not None and figures.fingerprint() == self.case.accepted_figures
