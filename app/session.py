"""What the app shows, separate from the widgets: frame, probabilities and display settings.

Pure Python + numpy (no Qt), so it is unit-tested on its own. Masks, areas and the
overlay picture are computed on demand from the stored probabilities, so moving the
threshold or opacity never re-runs the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import math

import numpy as np

from pipeline.imaging.calibration import MANUAL, Calibration, calibrate, manual_spacing
from pipeline.imaging.frames import Frame
from pipeline.inference.contract import THRESHOLD_RANGE, ModelContract
from pipeline.inference.measure import ClassArea, class_areas, draw_overlay
from pipeline.inference.saving import mask_and_overlay_paths, write_mask_and_overlay
from pipeline.inference.predictor import Segmentation

DEFAULT_OPACITY = 0.35


def clamp_threshold(value: float) -> float:
    """Clamps a probability threshold into :data:`THRESHOLD_RANGE`."""
    return min(max(float(value), THRESHOLD_RANGE[0]), THRESHOLD_RANGE[1])


@dataclass
class Session:
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

    def use_contract(self, contract: ModelContract) -> None:
        """Adopts a (new) model's classes and threshold; drops the old model's result."""
        self.classes = tuple(contract.classes)
        self.default_threshold = clamp_threshold(contract.threshold)
        self.threshold = self.default_threshold
        self.visible = [True] * len(self.classes)
        self.segmentation = None

    def set_frame(self, path: Path, frame: Frame) -> None:
        """Shows a newly read frame and calibrates it; its segmentation is pending until :meth:`set_segmentation`."""
        self.frame_path = Path(path)
        self.frame = frame
        self.calibration = calibrate(frame.gray, frame.spacing_mm)
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
        return self.calibration

    def set_segmentation(self, segmentation: Segmentation) -> None:
        """Stores the model's output for the current frame.

        Raises:
            ValueError: no frame is open, or the output does not match its size.
        """
        if self.frame is None or segmentation.probabilities.shape[1:] != self.frame.gray.shape:
            raise ValueError("segmentation does not match the open frame")
        self.segmentation = segmentation

    def set_threshold(self, value: float) -> None:
        """Sets the probability threshold (clamped to :data:`THRESHOLD_RANGE`)."""
        self.threshold = clamp_threshold(value)

    def set_opacity(self, value: float) -> None:
        """Sets the overlay fill opacity (clamped to [0, 1])."""
        self.opacity = min(max(float(value), 0.0), 1.0)

    def set_visible(self, index: int, visible: bool) -> None:
        """Shows or hides class ``index`` in the overlay (saved masks keep every class)."""
        self.visible[index] = bool(visible)

    def masks(self) -> np.ndarray | None:
        """(C, H, W) bool masks at the current threshold, or None without a segmentation."""
        return None if self.segmentation is None else self.segmentation.masks(self.threshold)

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
        return draw_overlay(self.frame.gray, shown, self.opacity)

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
        return write_mask_and_overlay(Path(out_dir), self.frame_path.stem, masks, self.overlay())

    def save_paths(self, out_dir: Path) -> tuple[Path, Path]:
        """The mask and overlay files :meth:`save` would write into ``out_dir``.

        Raises:
            ValueError: no frame is open.
        """
        if self.frame_path is None:
            raise ValueError("no frame is open")
        return mask_and_overlay_paths(Path(out_dir), self.frame_path.stem)

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
