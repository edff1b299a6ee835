"""The gland's diameters, its ellipsoid volume and the PSA density, from gland masks.

Shared by the evaluation, ``trus measure`` and the app; numpy and OpenCV only. Diameters are
taken as clinicians place calipers: the largest extent (maximum Feret diameter) and the
largest extent perpendicular to it. Transverse frame: width and antero-posterior height;
sagittal frame: length, and a second estimate of the height.

- Masks are (H, W) bool. Only the largest 8-connected component is measured (a stray speck
  does not stretch a diameter); an empty mask raises ValueError.
- Points are pixel centres, (x, y) floats in frame pixels: a run of n pixels measures n - 1 px.
- Distances are taken in mm space (x * spacing_x, y * spacing_y), so the largest extent and
  the perpendicular are right on pixels that are not square. Without a spacing, mm lengths
  and the volume are None: px are never used as if they were mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

Spacing = tuple[float, float]
"""Pixel spacing (spacing_x_mm, spacing_y_mm): mm per pixel along x (columns) and y (rows), both > 0."""

GLAND_CLASS = "gland"
"""The class name of the gland in a model's classes, the one these functions measure."""

PSA_DENSITY_THRESHOLD = 0.15
"""ng/mL/cc: the PSA density usually taken to warrant a biopsy or an MRI."""


@dataclass(frozen=True)
class Caliper:
    """One diameter, a segment to draw on the frame.

    Attributes:
        start_xy, end_xy: (x, y) frame px of its ends, the one with the smaller x (then y) first.
        length_px: its Euclidean length in pixel units, >= 0.
        length_mm: its length in mm, >= 0, or None when the spacing is unknown.
    """

    start_xy: tuple[float, float]
    end_xy: tuple[float, float]
    length_px: float
    length_mm: float | None


@dataclass(frozen=True)
class GlandDiameters:
    """The two calipers of one frame.

    Attributes:
        major: the largest extent (width on a transverse frame, length on a sagittal one).
        minor: the largest extent perpendicular to ``major`` (the antero-posterior height).
        spacing_mm: the spacing they were measured with, or None (then ``length_mm`` is None
            and the perpendicular is perpendicular in pixel space).
    """

    major: Caliper
    minor: Caliper
    spacing_mm: Spacing | None


@dataclass(frozen=True)
class PsaDensity:
    """PSA density: ``psa_ng_per_ml`` (>= 0) / ``volume_ml`` (mL = cc, > 0) = ``density``
    (ng/mL/cc, >= 0); ``reaches_threshold``: density >= ``threshold`` (ng/mL/cc, > 0)."""

    psa_ng_per_ml: float
    volume_ml: float
    density: float
    threshold: float
    reaches_threshold: bool


@dataclass(frozen=True)
class ProstateVolume:
    """The gland measured on a transverse and a sagittal frame.

    Attributes:
        transverse: width (major) and height (minor) calipers.
        sagittal: length (major) and a second height estimate (minor).
        volume_ml: pi/6 x length x width x transverse height, mL; None when a frame has no spacing.
        volume_note: why ``volume_ml`` is None, else None.
        psa: the PSA density when a PSA was given and the volume is known, else None.
    """

    transverse: GlandDiameters
    sagittal: GlandDiameters
    volume_ml: float | None
    volume_note: str | None
    psa: PsaDensity | None

    @property
    def width(self) -> Caliper:
        """Transverse largest extent (left-right)."""
        return self.transverse.major

    @property
    def height(self) -> Caliper:
        """Transverse extent perpendicular to the width (antero-posterior)."""
        return self.transverse.minor

    @property
    def length(self) -> Caliper:
        """Sagittal largest extent (cranio-caudal)."""
        return self.sagittal.major


def check_spacing(spacing_mm: Spacing | None) -> Spacing | None:
    """``spacing_mm`` as two floats, or None; raises ValueError unless both are finite and > 0."""
    if spacing_mm is None:
        return None
    try:
        values = tuple(float(value) for value in spacing_mm)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 2 or not all(math.isfinite(value) and value > 0 for value in values):
        raise ValueError(f"pixel spacing must be two finite values > 0 mm (x, y), got {spacing_mm!r}")
    return values[0], values[1]


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component (the first in row-major order on a tie) of a (H, W) mask, as bool.

    Raises:
        ValueError: the mask is not 2-D or is empty.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a gland mask must be 2-D (H, W), got shape {mask.shape}")
    if not mask.any():
        raise ValueError("the gland mask is empty: there is no gland to measure")
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    biggest = 1 + int(np.argmax(stats[1:count, cv2.CC_STAT_AREA]))
    return labels == biggest


def _hull_points_px(component: np.ndarray) -> np.ndarray:
    """(N >= 1, 2) float64 (x, y) px: the convex hull of the pixel centres of a non-empty (H, W) bool component."""
    contours, _ = cv2.findContours(component.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return cv2.convexHull(np.concatenate(contours)).reshape(-1, 2).astype(np.float64)


def _caliper(start_px: np.ndarray, end_px: np.ndarray, spacing: Spacing | None) -> Caliper:
    """A caliper between two (x, y) px points (to 1e-6 px), the one with the smaller x (then y) first."""
    start, end = sorted(tuple(round(float(value), 6) for value in point) for point in (start_px, end_px))
    length_mm = math.hypot((end[0] - start[0]) * spacing[0], (end[1] - start[1]) * spacing[1]) if spacing else None
    return Caliper(start, end, math.dist(start, end), length_mm)


def _longest_chord(hull_mm: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) mm ends of the longest chord of a convex polygon (N, 2) parallel to the unit vector ``direction``.

    Chord length is concave across the polygon and linear between vertices, so it peaks on
    a line through a vertex; lines midway between vertices are tried too, so that on a
    plateau of equal chords (a flat tip of pixels) the chord midway across it is taken.
    """
    normal = np.array([-direction[1], direction[0]])
    starts, ends = hull_mm, np.roll(hull_mm, -1, axis=0)
    level_start, level_end = starts @ normal, ends @ normal
    vertex_levels = np.unique(level_start)
    levels = np.concatenate([vertex_levels, (vertex_levels[1:] + vertex_levels[:-1]) / 2])[:, None]
    crossing = (level_start - levels) * (level_end - levels) <= 0  # (lines, edges)
    run = level_end - level_start
    fraction = np.clip(np.divide(levels - level_start, run, out=np.zeros(crossing.shape), where=run != 0), 0, 1)
    points = starts + fraction[..., None] * (ends - starts)  # (lines, edges, 2)
    along = points @ direction
    high = np.where(crossing, along, -np.inf).argmax(axis=1)
    low = np.where(crossing, along, np.inf).argmin(axis=1)
    rows = np.arange(len(levels))
    lengths = along[rows, high] - along[rows, low]
    tied = lengths >= lengths.max() - 1e-9 * max(1.0, lengths.max())
    middle = (levels[tied].min() + levels[tied].max()) / 2
    best = int(np.argmin(np.where(tied, np.abs(levels[:, 0] - middle), np.inf)))
    return points[best, low[best]], points[best, high[best]]


def _principal_axis(component: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Unit (x, y) vector along the largest second moment of a (H, W) bool component, in mm space."""
    moments = cv2.moments(component.astype(np.uint8), binaryImage=True)
    covariance = np.array([[moments["mu20"], moments["mu11"]], [moments["mu11"], moments["mu02"]]])
    return np.linalg.eigh(covariance * np.outer(scale, scale))[1][:, -1]


def _major_direction(hull_mm: np.ndarray, axis: np.ndarray, tie_mm: float) -> np.ndarray:
    """Unit (x, y) vector of the largest extent: of the hull point pairs within ``tie_mm`` of the
    furthest apart, the one closest in direction to ``axis``, then the longest; (1, 0) for one point."""
    offsets = hull_mm[None, :, :] - hull_mm[:, None, :]
    lengths = np.linalg.norm(offsets, axis=-1)
    first, second = np.nonzero(np.triu(lengths >= lengths.max() - tie_mm, k=1))
    if len(first) == 0:
        return np.array([1.0, 0.0])
    pair_lengths = lengths[first, second]
    alignment = np.abs(offsets[first, second] @ axis) / pair_lengths
    best = np.lexsort((-pair_lengths, -np.round(alignment, 9)))[0]
    return offsets[first[best], second[best]] / pair_lengths[best]


def gland_diameters(mask: np.ndarray, spacing_mm: Spacing | None = None) -> GlandDiameters:
    """The largest extent of a gland mask and the largest extent perpendicular to it.

    Both are chords of the convex hull of the largest component's pixel centres, in mm
    space (bridging any concavity, as calipers on the outer edges do). The major one lies
    along the two hull points furthest apart; pixel staircases make near-ties at blunt ends,
    so of the pairs within 1 px (of the coarser spacing) of the longest, the one closest in
    direction to the component's principal axis sets it (an ellipse's caliper lies on its
    axis, not a few degrees across it). The minor one is the longest chord perpendicular to
    it. On a plateau of equal chords, the one midway across. Each end may fall about 1 px
    short of the true outline.

    Args:
        mask: (H, W) bool gland mask.
        spacing_mm: (x, y) mm per px, or None for lengths in px only.

    Raises:
        ValueError: the mask is empty or not 2-D, or the spacing is not two values > 0.
    """
    spacing = check_spacing(spacing_mm)
    scale = np.array(spacing if spacing else (1.0, 1.0))
    component = largest_component(mask)
    hull_px = _hull_points_px(component)
    hull_mm = hull_px * scale
    direction = _major_direction(hull_mm, _principal_axis(component, scale), tie_mm=float(scale.max()))
    calipers = [_longest_chord(hull_mm, axis) for axis in (direction, np.array([-direction[1], direction[0]]))]
    major, minor = (_caliper(start / scale, end / scale, spacing) for start, end in calipers)
    return GlandDiameters(major, minor, spacing)


def _positive(name: str, value: float) -> float:
    """``value`` as a float; raises ValueError naming it unless it is finite and > 0."""
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def ellipsoid_volume_ml(length_mm: float, width_mm: float, height_mm: float) -> float:
    """Ellipsoid volume pi/6 x L x W x H of diameters in mm, in mL (1 mL = 1000 mm^3).

    Raises:
        ValueError: a diameter that is not finite and > 0 (named in the message).
    """
    product = _positive("length_mm", length_mm) * _positive("width_mm", width_mm) * _positive("height_mm", height_mm)
    return math.pi / 6.0 * product / 1000.0


def check_psa(psa_ng_per_ml: float, threshold: float = PSA_DENSITY_THRESHOLD) -> tuple[float, float]:
    """(PSA, threshold) as floats; raises ValueError unless PSA is finite and >= 0, the threshold finite and > 0."""
    psa = float(psa_ng_per_ml)
    if not (math.isfinite(psa) and psa >= 0):
        raise ValueError(f"psa_ng_per_ml must be a finite number >= 0, got {psa_ng_per_ml!r}")
    return psa, _positive("threshold", threshold)


def psa_density(psa_ng_per_ml: float, volume_ml: float, threshold: float = PSA_DENSITY_THRESHOLD) -> PsaDensity:
    """PSA density (ng/mL per cc of gland) and whether it reaches ``threshold`` (>=, no rounding).

    Raises:
        ValueError: PSA negative or not finite, volume or threshold not finite and > 0.
    """
    psa, limit = check_psa(psa_ng_per_ml, threshold)
    volume = _positive("volume_ml", volume_ml)
    density = psa / volume
    return PsaDensity(psa, volume, density, limit, density >= limit)


def prostate_volume(transverse_mask: np.ndarray, transverse_spacing_mm: Spacing | None,
                    sagittal_mask: np.ndarray, sagittal_spacing_mm: Spacing | None,
                    psa_ng_per_ml: float | None = None,
                    psa_threshold: float = PSA_DENSITY_THRESHOLD) -> ProstateVolume:
    """Width and height on a transverse frame, length on a sagittal one, the volume and PSA density.

    The volume uses the transverse height; the sagittal frame's perpendicular extent is
    reported as a second estimate. Without a spacing on either frame the volume and the
    PSA density are None and ``volume_note`` says why: px are never mixed with mm.

    Args:
        transverse_mask, sagittal_mask: (H, W) bool gland masks (any sizes).
        transverse_spacing_mm, sagittal_spacing_mm: (x, y) mm per px of each frame, or None.
        psa_ng_per_ml: serum PSA, ng/mL (>= 0), or None.
        psa_threshold: PSA density threshold, ng/mL/cc (> 0).

    Raises:
        ValueError: an empty or non-2-D mask, a bad spacing, PSA or threshold, or a zero diameter.
    """
    if psa_ng_per_ml is not None:
        check_psa(psa_ng_per_ml, psa_threshold)
    transverse = gland_diameters(transverse_mask, transverse_spacing_mm)
    sagittal = gland_diameters(sagittal_mask, sagittal_spacing_mm)
    missing = [plane for plane, spacing in (("transverse", transverse.spacing_mm), ("sagittal", sagittal.spacing_mm))
               if spacing is None]
    if missing:
        frames = "the transverse and sagittal frames" if len(missing) == 2 else f"the {missing[0]} frame"
        note = f"no pixel spacing for {frames}: diameters in px only there; the volume needs all three in mm"
        return ProstateVolume(transverse, sagittal, None, note, None)
    volume = ellipsoid_volume_ml(sagittal.major.length_mm, transverse.major.length_mm, transverse.minor.length_mm)
    psa = None if psa_ng_per_ml is None else psa_density(psa_ng_per_ml, volume, psa_threshold)
    return ProstateVolume(transverse, sagittal, volume, None, psa)
