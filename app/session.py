"""What the app shows, separate from the widgets: frame, probabilities and display settings.

Pure Python + numpy (no Qt), so it is unit-tested on its own. Masks, areas and the
overlay picture are computed on demand from the stored probabilities, so moving the
threshold or opacity never re-runs the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.calipers import (FrameCaliper, Point, automatic_calipers, check_plane, frame_plane, moved,
                          next_caliper_name, with_new_mask)
from app.case import Case
from app.session_case import CaseSession
from pipeline.imaging.calibration import MANUAL, Calibration, calibrate, manual_spacing
from pipeline.imaging.depth_scale import TICK_MM
from pipeline.imaging.frames import Frame
from pipeline.inference.contract import THRESHOLD_RANGE, ModelContract
from pipeline.inference.gland_size import GLAND_CLASS, PSA_DENSITY_THRESHOLD
from pipeline.inference.measure import ClassArea, class_areas, colour_for, draw_overlay
from pipeline.inference.saving import mask_and_overlay_paths, write_mask_and_overlay
from pipeline.inference.predictor import Segmentation

DEFAULT_OPACITY = 0.35


def clamp_threshold(value: float) -> float:
    """Clamps a probability threshold into :data:`THRESHOLD_RANGE`."""
    return min(max(float(value), THRESHOLD_RANGE[0]), THRESHOLD_RANGE[1])


@dataclass
class Session(CaseSession):
    """The state of one viewing session.

    Attributes:
        classes: the model's class names (empty until a model is loaded).
        default_threshold: the model contract's threshold, clamped to the slider range.
        threshold: current probability threshold.
        opacity: overlay fill opacity in [0, 1].
        visible: per class, whether it is drawn in the overlay.
        frame_path: the open frame's file, or None.
        frame: the open frame (grey pixels and spacing), or None.
        calibration: the open frame's pixel spacing and its source (the calibration chain of
            :func:`pipeline.imaging.calibration.calibrate`: DICOM, depth scale, none), or None.
        segmentation: the model's output for ``frame``, or None while none is available.
        user_plane: the plane the user chose for the frame, or None (then the file name's or
            the model's: :attr:`plane`).
        calipers: the frame's calipers, the automatic ones first (:mod:`app.calipers`).
        edited: (C, H, W) bool masks the user has edited, or None while the masks are the
            model's at the threshold (:meth:`masks`).
        tags: the user's tags for the frame (:func:`app.case.parse_tags`).
        case: the open case (:mod:`app.case`), or None for a frame shown on its own.
        frame_number: the open frame's 0-based number in ``case``, or None.
        psa_threshold: the PSA density threshold, ng/mL/cc (> 0).
        colours: the user's overlay colour (RGB, 0-255 each) per class name; a class not in it has its
            default colour (:func:`pipeline.inference.measure.colour_for` of its channel).
    """

    classes: tuple[str, ...] = ()
    default_threshold: float = 0.5
    threshold: float = 0.5
    opacity: float = DEFAULT_OPACITY
    visible: list[bool] = field(default_factory=list)
    frame_path: Path | None = None
    frame: Frame | None = None
    calibration: Calibration | None = None
    segmentation: Segmentation | None = None
    user_plane: str | None = None
    calipers: list[FrameCaliper] = field(default_factory=list)
    edited: np.ndarray | None = None
    tags: tuple[str, ...] = ()
    case: Case | None = None
    frame_number: int | None = None
    psa_threshold: float = PSA_DENSITY_THRESHOLD
    colours: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    _review_for: tuple[Segmentation, float] | None = field(default=None, repr=False)
    _review: str | None = field(default=None, repr=False)

    def use_contract(self, contract: ModelContract, threshold: float | None = None) -> None:
        """Adopts a (new) model's classes and threshold; drops the old model's result.

        Args:
            contract: the model's contract.
            threshold: the user's own probability threshold (clamped to :data:`THRESHOLD_RANGE`),
                or None for the contract's.
        """
        self.classes = tuple(contract.classes)
        self.default_threshold = clamp_threshold(contract.threshold)
        self.threshold = self.default_threshold if threshold is None else clamp_threshold(threshold)
        self.visible = [True] * len(self.classes)
        self.segmentation = None

    def set_frame(self, path: Path, frame: Frame, tick_mm: float = TICK_MM) -> None:
        """Shows a newly read frame and calibrates it; its segmentation is pending until :meth:`set_segmentation`."""
        self.frame_path = Path(path)
        self.frame = frame
        self.calibration = calibrate(frame.gray, frame.spacing_mm, tick_mm)
        self.user_plane = None
        self.tags = ()
        self.calipers = []
        self.edited = None
        self.segmentation = None

    def calibrate_manually(self, start_xy: tuple[float, float], end_xy: tuple[float, float],
                           distance_mm: float) -> Calibration:
        """Calibrates the open frame from two points ``distance_mm`` apart; the user's act replaces any other source.

        Raises:
            ValueError: no frame is open, a distance that is not > 0, or points less than 2 px apart.
        """
        if self.frame is None:
            raise ValueError("no frame is open")
        spacing = manual_spacing(start_xy, end_xy, distance_mm)
        self.calibration = Calibration((spacing, spacing), MANUAL, f"two points {math.dist(start_xy, end_xy):.1f} px "
                                                                   f"apart are {distance_mm:g} mm")
        self._edited_frame()
        self.refresh_calipers()  # "perpendicular" is in mm
        return self.calibration

    def recalibrate(self, tick_mm: float) -> Calibration | None:
        """Runs the calibration chain again with another depth-scale tick interval (a manual calibration stays)."""
        if self.frame is not None and self.calibration is not None and self.calibration.source != MANUAL:
            self.calibration = calibrate(self.frame.gray, self.frame.spacing_mm, tick_mm)
            self._edited_frame()
            self.refresh_calipers()
        return self.calibration

    @property
    def plane(self) -> tuple[str | None, str | None]:
        """The open frame's plane and its source (see :func:`app.calipers.frame_plane`); (None, None) without one."""
        if self.frame_path is None:
            return None, None
        model = self.segmentation.plane if self.segmentation is not None else None
        return frame_plane(self.user_plane, self.frame_path.name, model)

    def set_plane(self, plane: str | None) -> None:
        """The user's plane for the frame (None: back to the file name's or the model's); re-places the calipers."""
        self.user_plane = check_plane(plane)
        self._edited_frame()
        self.refresh_calipers()
        if self.case is not None:  # a volume frame no longer of its plane no longer gives that plane's diameters
            new_plane = self.plane[0]
            for volume_plane, number in list(self.case.volume_frames.items()):
                if number == self.frame_number and volume_plane != new_plane:
                    del self.case.volume_frames[volume_plane]

    def refresh_calipers(self) -> None:
        """Re-places the untouched automatic calipers on the current gland mask; the user's stay."""
        masks = self.masks()
        automatic: list[FrameCaliper] = []
        if masks is not None and GLAND_CLASS in self.classes:
            spacing = self.calibration.spacing_mm if self.calibration is not None else None
            automatic = automatic_calipers(masks[self.classes.index(GLAND_CLASS)], self.plane[0], spacing)
        self.calipers = with_new_mask(self.calipers, automatic)

    def move_caliper(self, index: int, end: int, xy: Point) -> FrameCaliper:
        """Moves end 0 or 1 of caliper ``index`` to ``xy`` (frame px); the caliper becomes the user's."""
        self.calipers[index] = moved(self.calipers[index], end, xy)
        self._edited_frame()
        return self.calipers[index]

    def add_caliper(self, start_xy: Point, end_xy: Point) -> FrameCaliper:
        """Adds a caliper named 'caliper N' between two frame points."""
        caliper = FrameCaliper(next_caliper_name(self.calipers), start_xy, end_xy)
        self.calipers.append(caliper)
        self._edited_frame()
        return caliper

    def delete_caliper(self, index: int) -> None:
        """Removes caliper ``index`` (an automatic one comes back only with the next mask or plane change)."""
        del self.calipers[index]
        self._edited_frame()

    def set_segmentation(self, segmentation: Segmentation) -> None:
        """Stores the model's output for the current frame.

        Raises:
            ValueError: no frame is open, or the output does not match its size.
        """
        if self.frame is None or segmentation.probabilities.shape[1:] != self.frame.gray.shape:
            raise ValueError("segmentation does not match the open frame")
        self.segmentation = segmentation
        if self.case is not None and self.frame_number is not None:
            self.case.keep_segmentation(self.frame_number, segmentation)
        self.refresh_calipers()

    def set_threshold(self, value: float) -> None:
        """Sets the probability threshold (clamped to :data:`THRESHOLD_RANGE`)."""
        self.threshold = clamp_threshold(value)
        if self.case is not None:
            self.case.clear_acceptance()  # every frame's masks change
        self.refresh_calipers()

    def set_opacity(self, value: float) -> None:
        """Sets the overlay fill opacity (clamped to [0, 1])."""
        self.opacity = min(max(float(value), 0.0), 1.0)

    def set_visible(self, index: int, visible: bool) -> None:
        """Shows or hides class ``index`` in the overlay (saved masks keep every class)."""
        self.visible[index] = bool(visible)

    def class_colours(self) -> list[tuple[int, int, int]]:
        """The overlay colour (RGB, 0-255 each) of every class, in channel order: the user's, else the default."""
        return [self.colours.get(name, colour_for(index)) for index, name in enumerate(self.classes)]

    def masks(self) -> np.ndarray | None:
        """(C, H, W) bool: the user's edited masks, else the model's at the current threshold; None without either."""
        if self.edited is not None:
            return self.edited
        return None if self.segmentation is None else self.segmentation.masks(self.threshold)

    def review_reason(self) -> str | None:
        """Why the model's gland on this frame should be reviewed (at the current threshold), or None.

        Kept for the last (segmentation, threshold): the app asks on every redraw.
        """
        if self.segmentation is None:
            return None
        known = self._review_for
        if known is None or known[0] is not self.segmentation or known[1] != self.threshold:
            self._review_for = (self.segmentation, self.threshold)
            self._review = self.segmentation.review_reason(self.threshold)
        return self._review

    def class_mask(self, index: int) -> np.ndarray:
        """A copy of class ``index``'s current (H, W) bool mask; raises ValueError without masks."""
        masks = self.masks()
        if masks is None:
            raise ValueError("there is no mask to edit yet")
        return masks[index].copy()

    def set_class_mask(self, index: int, mask: np.ndarray) -> None:
        """Replaces class ``index``'s mask (an edit): from then on the masks are the user's; re-places the calipers.

        Raises:
            ValueError: no masks yet, or a mask of another size.
        """
        masks = self.masks()
        if masks is None or mask.shape != masks.shape[1:]:
            raise ValueError("an edited mask must match the open frame's masks")
        if self.edited is None:
            self.edited = masks.copy()
        self.edited[index] = mask
        self._edited_frame()
        self.refresh_calipers()

    def reset_to_model(self) -> None:
        """Drops the user's edits: the masks are the model's again."""
        self.edited = None
        self._edited_frame()
        self.refresh_calipers()

    def areas(self) -> list[ClassArea]:
        """Area of every class at the current threshold (empty without a segmentation)."""
        masks = self.masks()
        if masks is None or self.calibration is None:
            return []
        return class_areas(masks, self.classes, self.calibration.spacing_mm)

    def overlay(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB: the frame with the visible classes drawn over it.

        Raises:
            ValueError: no frame is open.
        """
        if self.frame is None:
            raise ValueError("no frame is open")
        masks = self.masks()
        if masks is None:
            shown = np.zeros((0,) + self.frame.gray.shape, bool)
        else:
            shown = masks & np.asarray(self.visible, bool)[:, None, None]
        return draw_overlay(self.frame.gray, shown, self.opacity, self.class_colours() or None)

    def save(self, out_dir: Path) -> tuple[Path, Path]:
        """Writes ``<stem>_mask.png`` (all classes) and ``<stem>_overlay.png`` (as shown).

        Args:
            out_dir: an existing folder.

        Returns:
            The mask and overlay paths.

        Raises:
            ValueError: there is no segmentation to save.
            OSError: the files could not be written.
        """
        masks = self.masks()
        if masks is None or self.frame_path is None:
            raise ValueError("there is no segmentation to save")
        return write_mask_and_overlay(Path(out_dir), self.frame_stem, masks, self.overlay())

    def save_paths(self, out_dir: Path) -> tuple[Path, Path]:
        """The mask and overlay files :meth:`save` would write into ``out_dir``.

        Raises:
            ValueError: no frame is open.
        """
        if self.frame_path is None:
            raise ValueError("no frame is open")
        return mask_and_overlay_paths(Path(out_dir), self.frame_stem)

    @property
    def frame_stem(self) -> str:
        """The stem of files saved from the open frame (a cine frame's number appended); "" without one."""
        if self.case is not None and self.frame_number is not None:
            return self.case.frames[self.frame_number].stem
        return self.frame_path.stem if self.frame_path is not None else ""

    def pixel_info(self, x: int, y: int) -> str:
        """One-line description of frame pixel (x, y): grey value and class probabilities.

        Returns:
            The description, or "" when (x, y) lies outside the frame.
        """
        if self.frame is None or not (0 <= y < self.frame.gray.shape[0] and 0 <= x < self.frame.gray.shape[1]):
            return ""
        parts = [f"x {x}  y {y}", f"grey {int(self.frame.gray[y, x])}"]
        if self.segmentation is not None:
            parts += [f"{name} {self.segmentation.probabilities[i, y, x]:.2f}" for i, name in enumerate(self.classes)]
        return "   ".join(parts)
