"""Calipers on a frame and the frame's plane: the measuring state of the workstation (no Qt).

A caliper is two points in frame pixels. The automatic ones come from the gland mask
(:func:`pipeline.inference.gland_size.gland_diameters`, the measurement the CLI and the
pipeline use): on a transverse frame the width (largest extent) and the height (largest
extent perpendicular to it), on a sagittal frame the length; on a frame of unknown plane the
largest extent and its perpendicular. The user can drag their ends, add calipers and delete
them. An automatic caliper the user has moved is theirs: a new mask (another threshold, an
edit) replaces only the automatic calipers still untouched, and not one whose name (the
width, say) an edited caliper now holds.

The plane comes, in this order, from the user, from the file name
(:data:`pipeline.planes.DEFAULT_PLANE_PATTERN`, as the pipeline reads it), else from the
model's plane output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from pipeline.inference.gland_size import Spacing, gland_diameters
from pipeline.planes import DEFAULT_PLANE_PATTERN, PLANES, plane_from_name

Point = tuple[float, float]
AUTOMATIC_NAMES = {"transverse": ("width", "height"), "sagittal": ("length",),
                   None: ("largest extent", "perpendicular")}
"""Plane (None: unknown) -> the names of its automatic calipers, major first."""
PLANE_SOURCES = {"user": "set by you", "file name": "from the file name", "model": "the model's plane output",
                 None: "unknown: choose it"}


@dataclass(frozen=True)
class FrameCaliper:
    """One caliper.

    Attributes:
        name: what it measures (``width``, ``height``, ``length``, or ``caliper N``).
        start_xy, end_xy: its ends, (x, y) frame px.
        automatic: placed from the gland mask and not moved since.
    """

    name: str
    start_xy: Point
    end_xy: Point
    automatic: bool = False

    @property
    def length_px(self) -> float:
        """Euclidean length in frame px, >= 0."""
        return math.dist(self.start_xy, self.end_xy)

    def length_mm(self, spacing_mm: Spacing | None) -> float | None:
        """Length in mm with (x, y) mm per px (pixels need not be square), or None without a spacing."""
        if spacing_mm is None:
            return None
        return math.hypot((self.end_xy[0] - self.start_xy[0]) * spacing_mm[0],
                          (self.end_xy[1] - self.start_xy[1]) * spacing_mm[1])

    def text(self, spacing_mm: Spacing | None) -> str:
        """'width 45.2 mm', or 'width 412.0 px' without a spacing."""
        length = self.length_mm(spacing_mm)
        return f"{self.name} {length:.1f} mm" if length is not None else f"{self.name} {self.length_px:.1f} px"


def automatic_calipers(gland_mask: np.ndarray, plane: str | None,
                       spacing_mm: Spacing | None = None) -> list[FrameCaliper]:
    """The calipers a plane asks for, placed on the gland mask; [] when the mask is empty.

    Args:
        gland_mask: (H, W) bool.
        plane: ``transverse``, ``sagittal`` or None (unknown).
        spacing_mm: (x, y) mm per px, so that "perpendicular" is perpendicular in mm; or None.
    """
    if not gland_mask.any():
        return []
    diameters = gland_diameters(gland_mask, spacing_mm)
    pairs = zip(AUTOMATIC_NAMES[plane], (diameters.major, diameters.minor))
    return [FrameCaliper(name, caliper.start_xy, caliper.end_xy, automatic=True) for name, caliper in pairs]


def frame_plane(user: str | None, file_name: str, model: str | None) -> tuple[str | None, str | None]:
    """The frame's plane and its source (a key of :data:`PLANE_SOURCES`): the user's, the file name's, the model's."""
    if user is not None:
        return user, "user"
    from_name = plane_from_name(file_name, DEFAULT_PLANE_PATTERN)
    if from_name is not None:
        return from_name, "file name"
    return (model, "model") if model is not None else (None, None)


def check_plane(plane: str | None) -> str | None:
    """``plane`` if it is one of :data:`PLANES` or None; raises ValueError otherwise."""
    if plane is not None and plane not in PLANES:
        raise ValueError(f"a plane is one of {', '.join(PLANES)}, got {plane!r}")
    return plane


def with_new_mask(calipers: list[FrameCaliper], automatic: list[FrameCaliper]) -> list[FrameCaliper]:
    """The user's calipers kept; the untouched automatic ones replaced by those of ``automatic`` whose name no
    caliper of the user's has (an edited width stays the width). The automatic ones come first."""
    kept = [caliper for caliper in calipers if not caliper.automatic]
    taken = {caliper.name for caliper in kept}
    return [*(caliper for caliper in automatic if caliper.name not in taken), *kept]


def moved(caliper: FrameCaliper, end: int, xy: Point) -> FrameCaliper:
    """``caliper`` with end 0 (start) or 1 (end) at ``xy``; it is no longer automatic."""
    if end not in (0, 1):
        raise ValueError(f"a caliper has ends 0 and 1, got {end}")
    return replace(caliper, start_xy=xy, automatic=False) if end == 0 else replace(caliper, end_xy=xy, automatic=False)


def next_caliper_name(calipers: list[FrameCaliper]) -> str:
    """'caliper N' with N one more than the highest number in use."""
    numbers = [int(c.name.split()[1]) for c in calipers if c.name.startswith("caliper ") and c.name[8:].isdigit()]
    return f"caliper {max(numbers, default=0) + 1}"
