"""One synthetic patient's prostate in 3-D, and the slices a TRUS exam cuts through it.

Coordinates are mm, centred on the gland: ``x`` lateral, ``y`` antero-posterior (positive
anteriorly, away from the rectum and the probe), ``z`` cranio-caudal (positive cranially,
towards the base and the bladder). The gland's extents are its length L (along z), width W
(along x) and height H (along y); its volume is the ellipsoid's, pi/6 * L * W * H.

A transverse frame cuts the plane ``z = position * L/2`` (base > 0 > apex); a sagittal frame
cuts ``x = position * W/2`` (midline at 0). A frame's in-plane coordinates are ``(u, v)``
mm: ``v = y`` (anterior, away from the probe), ``u = x`` in a transverse frame and ``u = -z``
in a sagittal one (the cranial end, with the bladder, on the image's left).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

TRANSVERSE, SAGITTAL = "transverse", "sagittal"
PLANES = (TRANSVERSE, SAGITTAL)
# levels: transverse base | mid | apex, sagittal midline | off_midline; a frame that misses the gland
# is beyond the apex (transverse) or lateral to the gland (sagittal)
LEVELS = {TRANSVERSE: ("base", "mid", "apex", "beyond_apex"), SAGITTAL: ("midline", "off_midline", "lateral")}
MIN_LESION_CUT = 0.5  # a slice shows the lesion when its cut is at least half the lesion's own size
MIN_LESION_RADIUS_MM = 2.0  # ... and at least 4 mm across (smaller cuts are lost in the speckle)
_TRANSVERSE_REACH = 0.6  # base and apex frames at +-0.6 L/2
_OFF_MIDLINE = (0.4, 0.65)  # off-midline sagittal frames at these fractions of W/2
_OUTSIDE = {TRANSVERSE: -1.3, SAGITTAL: 1.35}  # where the probe misses the gland
_POSITION_JITTER = 0.04


@dataclass(frozen=True)
class LesionAnatomy:
    """A lesion: an axis-aligned ellipsoid inside the gland.

    Attributes:
        centre_mm: (x, y, z) of its centre, mm from the gland's centre.
        semi_axes_mm: (x, y, z) semi-axes, mm, about 2..9 (lesions 6-14 mm across, some elongated).
    """

    centre_mm: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]


@dataclass(frozen=True)
class GlandAnatomy:
    """One patient's gland and its surroundings, in mm, drawn once per patient.

    Attributes:
        length_mm: cranio-caudal extent L (base to apex), mm, 0.01 mm steps.
        width_mm: lateral extent W, mm, 0.01 mm steps.
        height_mm: antero-posterior extent H, mm, 0.01 mm steps.
        enlarged_tz: benign enlargement of the transition zone (larger, rounder gland with a
            larger, nodular inner zone).
        tz_fraction: size of the transition zone relative to the gland's section, 0..1.
        harmonics: (relative amplitude, phase rad) of the transverse outline's radius
            harmonics k = 2, 3, 4.
        flattening: 0..1 flattening of the posterior (rectal) border, both planes.
        taper: 0..1 narrowing of the transverse section anteriorly.
        sagittal_harmonics: as ``harmonics``, for the sagittal outline.
        base_bulge: 0..1 thickening of the sagittal section towards the base.
        bladder_mm: (cranio-caudal, antero-posterior, lateral) semi-axes of the bladder, mm.
        vesicle_mm: (length, thickness) of a seminal vesicle, mm.
        off_midline_side: +1 or -1, the side (sign of x) of the first off-midline sagittal frame.
        lesion: the lesion, or None.
    """

    length_mm: float
    width_mm: float
    height_mm: float
    enlarged_tz: bool
    tz_fraction: float
    harmonics: tuple[tuple[float, float], ...]
    flattening: float
    taper: float
    sagittal_harmonics: tuple[tuple[float, float], ...]
    base_bulge: float
    bladder_mm: tuple[float, float, float]
    vesicle_mm: tuple[float, float]
    off_midline_side: int
    lesion: LesionAnatomy | None

    @property
    def volume_ml(self) -> float:
        """The ellipsoid volume pi/6 * L * W * H, mL."""
        return ellipsoid_volume_ml(self.length_mm, self.width_mm, self.height_mm)

    @property
    def semi_axes_mm(self) -> tuple[float, float, float]:
        """(x, y, z) semi-axes: (W/2, H/2, L/2), mm."""
        return self.width_mm / 2, self.height_mm / 2, self.length_mm / 2


@dataclass(frozen=True)
class FrameSlice:
    """The plane a frame cuts through the patient.

    Attributes:
        plane: ``transverse`` or ``sagittal``.
        level: see :data:`LEVELS`.
        position: transverse: z / (L/2), positive towards the base; sagittal: x / (W/2); |position| > 1
            misses the gland.
    """

    plane: str
    level: str
    position: float

    @property
    def shows_gland(self) -> bool:
        """Whether the slice cuts the gland."""
        return abs(self.position) < 1.0


MID_GLAND = FrameSlice(TRANSVERSE, "mid", 0.0)


@dataclass(frozen=True)
class LesionSection:
    """A lesion's cut by a slice, in the frame's in-plane (u, v) mm (see the module docstring).

    Attributes:
        centre_mm: (u, v) of the cut's centre, mm from the gland's centre.
        semi_axes_mm: (u, v) semi-axes of the cut, mm.
    """

    centre_mm: tuple[float, float]
    semi_axes_mm: tuple[float, float]


def ellipsoid_volume_ml(length_mm: float, width_mm: float, height_mm: float) -> float:
    """pi/6 * L * W * H, converted from mm^3 to mL."""
    return float(np.pi / 6 * length_mm * width_mm * height_mm / 1000.0)


def draw_anatomy(rng: np.random.Generator, with_lesion: bool = False, lesion_in: FrameSlice | None = None
                 ) -> GlandAnatomy:
    """Draws a gland of 15-80 mL (about one in four with an enlarged transition zone).

    Args:
        rng: random source; the draws do not depend on ``with_lesion`` (the lesion is drawn
            either way), so a patient's gland is the same with and without a lesion.
        with_lesion: keep the lesion.
        lesion_in: a slice the lesion must lie in (its centre within 15 % of its size of the
            slice's plane); None: anywhere in the gland (mostly the posterior peripheral zone).
    """
    enlarged = bool(rng.random() < 0.25)
    volume_ml = rng.uniform(45.0, 80.0) if enlarged else rng.uniform(15.0, 45.0)
    height_ratio = rng.uniform(0.75, 0.9) if enlarged else rng.uniform(0.58, 0.75)  # H / W
    length_ratio = rng.uniform(0.85, 1.05) if enlarged else rng.uniform(0.75, 1.0)  # L / W
    width = (volume_ml * 1000.0 * 6 / np.pi / (height_ratio * length_ratio)) ** (1 / 3)
    anatomy = GlandAnatomy(
        length_mm=round(width * length_ratio, 2), width_mm=round(width, 2), height_mm=round(width * height_ratio, 2),
        enlarged_tz=enlarged, tz_fraction=float(rng.uniform(0.72, 0.82) if enlarged else rng.uniform(0.55, 0.65)),
        harmonics=_harmonics(rng, (0.06, 0.05, 0.025)),
        flattening=float(rng.uniform(0.03, 0.08) if enlarged else rng.uniform(0.06, 0.16)),
        taper=float(rng.uniform(0.04, 0.12) if enlarged else rng.uniform(0.08, 0.22)),
        sagittal_harmonics=_harmonics(rng, (0.04, 0.03, 0.015)),
        base_bulge=float(rng.uniform(0.08, 0.22)),
        bladder_mm=(float(rng.uniform(20.0, 32.0)), float(rng.uniform(14.0, 24.0)), float(rng.uniform(30.0, 45.0))),
        vesicle_mm=(float(rng.uniform(22.0, 34.0)), float(rng.uniform(6.0, 11.0))),
        off_midline_side=int(rng.choice([-1, 1])),
        lesion=None,
    )
    lesion = _draw_lesion(rng, anatomy, lesion_in)
    return dataclasses.replace(anatomy, lesion=lesion) if with_lesion else anatomy


def _harmonics(rng: np.random.Generator, highest: tuple[float, ...]) -> tuple[tuple[float, float], ...]:
    """(amplitude, phase) per harmonic, amplitude from highest/3 to highest."""
    return tuple((float(rng.uniform(h / 3, h)), float(rng.uniform(0, 2 * np.pi))) for h in highest)


def _draw_lesion(rng: np.random.Generator, anatomy: GlandAnatomy, lesion_in: FrameSlice | None) -> LesionAnatomy:
    """A lesion well inside the gland: 70 % posterior (peripheral zone), 30 % anterior-central (transition zone).

    Its centre and semi-axes are drawn until :func:`_lesion_inside` holds.
    """
    half = np.array(anatomy.semi_axes_mm)
    peripheral = rng.random() < 0.7
    for _ in range(1000):
        semi = rng.uniform(3.0, 7.0) * np.array([1.0, rng.uniform(0.7, 1.0), rng.uniform(0.8, 1.25)])
        if peripheral:
            centre = np.array([rng.choice([-1, 1]) * rng.uniform(0.15, 0.6), rng.uniform(-0.6, -0.2),
                               rng.uniform(-0.75, 0.6)]) * half
        else:
            centre = np.array([rng.uniform(-0.4, 0.4), rng.uniform(0.0, 0.4), rng.uniform(-0.3, 0.6)]) * half
        if lesion_in is not None:
            axis = 2 if lesion_in.plane == TRANSVERSE else 0
            centre[axis] = lesion_in.position * half[axis] + rng.uniform(-0.15, 0.15) * semi[axis]
        if _lesion_inside(centre, semi, half):
            return LesionAnatomy(tuple(map(float, np.round(centre, 3))), tuple(map(float, np.round(semi, 3))))
    raise ValueError(f"no lesion fits inside the gland at {lesion_in}")


def _lesion_inside(centre: np.ndarray, semi: np.ndarray, half: np.ndarray) -> bool:
    """Whether 26 points of the lesion's surface lie within 0.75 of the gland's section at their level (clear of
    the capsule) and within 0.85 L/2 of the gland's centre along its length."""
    directions = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1) if (i, j, k) != (0, 0, 0)])
    directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    x, y, z = ((centre + directions * semi) / half).T
    return bool(np.all(np.abs(z) <= 0.85) and np.all(x**2 + y**2 <= 0.75**2 * (1.0 - z**2)))


def sagittal_count(frames: int, sagittal_fraction: float) -> int:
    """How many of a patient's ``frames`` are sagittal: ``sagittal_fraction * frames`` rounded half up."""
    return min(frames, int(np.floor(sagittal_fraction * frames + 0.5)))


def nominal_positions(plane: str, count: int, side: int = 1) -> list[float]:
    """The slices' positions before jitter, in exam order.

    Transverse: from the base to the apex (1: mid-gland; 2: base, mid; 3 or more: evenly from
    +0.6 to -0.6). Sagittal: the midline first, then off-midline slices alternating sides from
    ``side``, at 0.4 and 0.65 of W/2.
    """
    if plane == TRANSVERSE:
        few = {0: [], 1: [0.0], 2: [_TRANSVERSE_REACH, 0.0]}
        return few[count] if count in few else np.linspace(_TRANSVERSE_REACH, -_TRANSVERSE_REACH, count).tolist()
    offsets = [0.0] + [s * o * side for o in _OFF_MIDLINE for s in (1, -1)]
    return [offsets[min(i, len(offsets) - 1)] for i in range(count)]


def slice_level(plane: str, position: float) -> str:
    """The level's name of a slice at ``position`` (see :class:`FrameSlice`)."""
    if abs(position) >= 1.0:
        return LEVELS[plane][-1]
    if plane == TRANSVERSE:
        return "base" if position > 0.3 else "apex" if position < -0.3 else "mid"
    return "midline" if abs(position) < 0.15 else "off_midline"


def exam_slices(rng: np.random.Generator, frames: int, sagittal_fraction: float, side: int = 1) -> list[FrameSlice]:
    """A patient's slices in frame order: the transverse sweep (base to apex), then the sagittal frames.

    Args:
        rng: random source of the sonographer's hand (each position jittered by up to +-0.04).
        frames: frames per patient, >= 1.
        sagittal_fraction: share of sagittal frames, 0..1 (:func:`sagittal_count`).
        side: the side of the first off-midline sagittal frame, +1 or -1.
    """
    n_sagittal = sagittal_count(frames, sagittal_fraction)
    planned = [(TRANSVERSE, p) for p in nominal_positions(TRANSVERSE, frames - n_sagittal)] + \
              [(SAGITTAL, p) for p in nominal_positions(SAGITTAL, n_sagittal, side)]
    jitter = rng.uniform(-_POSITION_JITTER, _POSITION_JITTER, len(planned))
    return [FrameSlice(plane, slice_level(plane, p + d), round(float(p + d), 3)) for (plane, p), d in zip(planned, jitter)]


def documented_slices(slices: list[FrameSlice], anatomy: GlandAnatomy) -> list[FrameSlice]:
    """A lesion patient's slices: the sonographer records the lesion in each plane.

    In each plane where no slice cuts the lesion, the slice nearest to it moves onto the
    lesion's centre (and takes the level of its new position). The mid-gland transverse and
    midline sagittal frames (the largest sections, kept for measuring) move only when they are
    their plane's only frame.

    Args:
        slices: the exam's planned slices (:func:`exam_slices`).
        anatomy: the gland, with its lesion (None: ``slices`` unchanged).
    """
    moved = list(slices)
    lesion = anatomy.lesion
    if lesion is None:
        return moved
    for plane in PLANES:
        indices = [i for i, s in enumerate(moved) if s.plane == plane]
        if any(lesion_section(anatomy, moved[i]) is not None for i in indices):
            continue
        movable = [i for i in indices if moved[i].level not in ("mid", "midline")] or indices
        if not movable:
            continue
        axis, half = (2, anatomy.length_mm / 2) if plane == TRANSVERSE else (0, anatomy.width_mm / 2)
        target = round(lesion.centre_mm[axis] / half, 3)
        nearest = min(movable, key=lambda i: abs(moved[i].position - target))
        moved[nearest] = FrameSlice(plane, slice_level(plane, target), target)
    return moved


def outside_slice(plane: str, side: int = 1) -> FrameSlice:
    """The slice of a frame that misses the gland: beyond the apex (transverse) or lateral to it (sagittal)."""
    position = _OUTSIDE[plane] * (side if plane == SAGITTAL else 1)
    return FrameSlice(plane, LEVELS[plane][-1], position)


def section_scale(frame_slice: FrameSlice) -> float:
    """The gland section's size relative to the largest one of its plane: sqrt(1 - position^2), 0 outside."""
    return float(np.sqrt(max(0.0, 1.0 - frame_slice.position**2)))


def lesion_section(anatomy: GlandAnatomy, frame_slice: FrameSlice) -> LesionSection | None:
    """The lesion's cut by a slice, or None when the slice misses it, or cuts less than :data:`MIN_LESION_CUT` of
    it or less than :data:`MIN_LESION_RADIUS_MM` (semi-axis)."""
    lesion = anatomy.lesion
    if lesion is None or not frame_slice.shows_gland:
        return None
    (x, y, z), (ax, ay, az) = lesion.centre_mm, lesion.semi_axes_mm
    if frame_slice.plane == TRANSVERSE:
        offset, (u, a_u) = (frame_slice.position * anatomy.length_mm / 2 - z) / az, (x, ax)
    else:
        offset, (u, a_u) = (frame_slice.position * anatomy.width_mm / 2 - x) / ax, (-z, az)
    cut = float(np.sqrt(max(0.0, 1.0 - offset**2)))
    if cut < MIN_LESION_CUT or min(a_u, ay) * cut < MIN_LESION_RADIUS_MM:
        return None
    return LesionSection((float(u), float(y)), (float(a_u * cut), float(ay * cut)))
