"""What a frame shows around the gland that is not annotated: bladder, seminal vesicles, urethra.

A sagittal frame shows, cranial to the gland (the image's left), the anechoic bladder
behind its bright wall, with posterior acoustic enhancement beyond it (computed along the
beams), and the hypoechoic seminal vesicles between the bladder and the rectum, beyond
the base. The urethra runs through the gland as a faint line on the midline, and shows as a
faint dot in transverse frames. The rectal wall near the probe is part of
:func:`pipeline.synthetic.echo.beam_db`. In-plane coordinates as in :mod:`pipeline.synthetic.sections`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.imaging.polygons import rasterise_polygon
from pipeline.synthetic.anatomy import SAGITTAL, FrameSlice, GlandAnatomy
from pipeline.synthetic.sections import FramePose, region_around, urethra_in_transverse_mm, urethra_mm
from pipeline.synthetic.sector import FanGeometry, beam_shape, to_beam_grid

_LUMEN_DB = -30.0  # urine: almost no scatterers
_URETHRA_REACH_MM = 4.0  # a sagittal slice further than this from the midline misses the urethra


@dataclass(frozen=True)
class Surroundings:
    """The unannotated structures of one frame.

    Attributes:
        db: (H, W) float32 dB to add to the frame.
        bladder: (H, W) bool, the bladder's lumen (all False when not in view).
    """

    db: np.ndarray
    bladder: np.ndarray


def ellipse_mm(centre: tuple[float, float], semi_axes: tuple[float, float], angle: float, n: int = 120) -> np.ndarray:
    """(n, 2) float64 (u, v) mm outline of an ellipse turned by ``angle`` rad."""
    phi = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    local = np.stack([semi_axes[0] * np.cos(phi), semi_axes[1] * np.sin(phi)], 1)
    c, s = np.cos(angle), np.sin(angle)
    return np.asarray(centre) + local @ np.array([[c, s], [-s, c]])


def bladder_outline_mm(anatomy: GlandAnatomy, frame_slice: FrameSlice) -> np.ndarray | None:
    """The bladder's section in a sagittal slice, or None where the slice passes lateral to it.

    Its caudal-posterior part (the bladder neck) reaches the gland's base at the urethra's
    start; the section narrows like an ellipsoid with the slice's lateral distance.
    """
    along, deep, lateral = anatomy.bladder_mm
    x_mm = frame_slice.position * anatomy.width_mm / 2
    if abs(x_mm) >= 0.95 * lateral:
        return None
    scale = np.sqrt(1.0 - (x_mm / lateral) ** 2)
    neck = np.array([-0.5 * anatomy.length_mm, 0.17 * anatomy.height_mm])
    centre = neck + np.array([-0.7 * along, 0.75 * deep]) * scale
    return ellipse_mm(tuple(centre), (along * scale, deep * scale), angle=0.0)


def vesicle_outline_mm(anatomy: GlandAnatomy, frame_slice: FrameSlice) -> np.ndarray | None:
    """A seminal vesicle's section in a sagittal slice, or None where the slice misses both.

    The vesicles lie beyond the base, posteriorly (between bladder and rectum), rising
    anteriorly as they run cranially; each is centred 0.28 W from the midline and spans
    +-0.32 W laterally, so the midline shows them at about half their size.
    """
    length, thickness = anatomy.vesicle_mm
    offset = (abs(frame_slice.position * anatomy.width_mm / 2) - 0.28 * anatomy.width_mm) / (0.32 * anatomy.width_mm)
    if abs(offset) >= 0.9:
        return None
    scale = np.sqrt(1.0 - offset**2)
    centre = (-0.5 * anatomy.length_mm - 0.3 * length * scale, -0.2 * anatomy.height_mm)
    return ellipse_mm(centre, (length / 2 * scale, thickness / 2 * scale), angle=-0.45)


def surroundings(rng: np.random.Generator, anatomy: GlandAnatomy, frame_slice: FrameSlice, pose: FramePose,
                 gland: np.ndarray) -> Surroundings:
    """The dB of the bladder, seminal vesicles and urethra in one frame.

    Args:
        rng: random source (wall brightness, contrasts).
        anatomy: the patient's gland.
        frame_slice: the frame's slice.
        pose: the gland's pose in this frame.
        gland: (H, W) bool gland mask (all False when the probe misses the gland); nothing
            else is drawn on it, and the bladder and vesicles keep clear of it.

    Returns:
        The dB and the bladder's lumen, both (H, W).
    """
    shape, mm = gland.shape, pose.px_per_mm
    db, lumen = np.zeros(shape, np.float32), np.zeros(shape, bool)
    if gland.any():
        ys, xs = np.nonzero(gland)
        roi = region_around(np.array([[xs.min(), ys.min()], [xs.max(), ys.max()]]), shape, pad=2)
        db[roi] += _urethra_db(rng, anatomy, frame_slice, pose, gland[roi], (roi[1].start, roi[0].start))
    if frame_slice.plane != SAGITTAL:
        return Surroundings(db, lumen)
    wall_mm = rng.uniform(2.0, 3.5)
    clear = (wall_mm + 1.0) * mm  # the bladder's lumen and the vesicles keep this far from the gland, px
    bladder = bladder_outline_mm(anatomy, frame_slice)
    roi = None if bladder is None else region_around(pose.to_px(bladder), shape, pad=int(clear + wall_mm * mm) + 4)
    if roi is not None and gland[roi].size:
        polygon = pose.to_px(bladder)
        origin = np.array([roi[1].start, roi[0].start])
        inside = rasterise_polygon([polygon - origin], gland[roi].shape) & ~_dilate(gland[roi], clear)
        outside = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 5)
        wall = np.exp(-(((outside - 0.5 * wall_mm * mm) / (0.5 * wall_mm * mm)) ** 2)) * (outside > 0)
        soft = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), 0.4 * mm)
        db[roi] += _LUMEN_DB * soft + rng.uniform(10.0, 14.0) * wall
        lumen[roi] = inside
    vesicle = vesicle_outline_mm(anatomy, frame_slice)
    roi = None if vesicle is None else region_around(pose.to_px(vesicle), shape, pad=int(clear + wall_mm * mm) + 4)
    if roi is not None and gland[roi].size:
        polygon = pose.to_px(vesicle)
        origin = np.array([roi[1].start, roi[0].start])
        keep_out = _dilate(gland[roi], clear) | _dilate(lumen[roi], clear)
        inside = rasterise_polygon([polygon - origin], keep_out.shape) & ~keep_out
        soft = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), 0.6 * mm)
        rim = cv2.GaussianBlur((_dilate(inside, 0.8 * mm) & ~inside).astype(np.float32), (0, 0), 0.4 * mm)
        db[roi] += rng.uniform(-12.0, -8.0) * soft + 3.0 * rim
    return Surroundings(db, lumen)


def enhancement_db(fan: FanGeometry, lumen: np.ndarray, amplitude_db: float) -> np.ndarray:
    """Posterior acoustic enhancement beyond fluid, on the beam grid.

    Each beam beyond the bladder is brighter in proportion to the path it ran through urine,
    up to ``amplitude_db`` after 15 mm.

    Returns:
        (n_radii, n_angles) float32 dB (see :func:`~pipeline.synthetic.sector.beam_shape`).
    """
    n_r, _ = beam_shape(fan)
    step_mm = fan.r_outer / (n_r - 1) / (fan.px_per_cm / 10.0)
    fluid = to_beam_grid(fan, lumen.astype(np.float32))
    path_mm = np.cumsum(fluid, axis=0) * step_mm
    return (amplitude_db * np.clip(path_mm / 15.0, 0.0, 1.0) * (1.0 - fluid)).astype(np.float32)


def _urethra_db(rng: np.random.Generator, anatomy: GlandAnatomy, frame_slice: FrameSlice, pose: FramePose,
                gland: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 dB of the urethra inside a region of the gland: a hypoechoic core with faint echogenic walls.

    Args:
        gland: (h, w) bool gland mask of the region.
        origin: frame (x, y) px of the region's top-left pixel.
    """
    mm = pose.px_per_mm
    core, walls = np.zeros(gland.shape, np.float32), np.zeros(gland.shape, np.float32)

    def to_region(points_mm: np.ndarray) -> np.ndarray:  # region px, 4 fractional bits (cv2's shift=4)
        return np.round((pose.to_px(points_mm) - origin) * 16).astype(np.int32)

    if frame_slice.plane == SAGITTAL:
        visible = 1.0 - abs(frame_slice.position * anatomy.width_mm / 2) / _URETHRA_REACH_MM
        if visible <= 0:
            return core
        line = [to_region(urethra_mm(anatomy))]
        cv2.polylines(walls, line, False, 1.0, max(1, round(2.4 * mm)), cv2.LINE_AA, shift=4)
        cv2.polylines(core, line, False, 1.0, max(1, round(1.0 * mm)), cv2.LINE_AA, shift=4)
    else:
        visible = 1.0
        centre = tuple(to_region(np.array([urethra_in_transverse_mm(anatomy, frame_slice)]))[0].tolist())
        cv2.circle(walls, centre, max(16, round(2.0 * mm * 16)), 1.0, -1, cv2.LINE_AA, shift=4)
        cv2.circle(core, centre, max(8, round(1.1 * mm * 16)), 1.0, -1, cv2.LINE_AA, shift=4)
    blur = max(0.5, 0.3 * mm)
    core, walls = (cv2.GaussianBlur(a, (0, 0), blur) for a in (core, walls))
    contrast = rng.uniform(5.0, 7.0)
    return (visible * gland * (-contrast * core + 0.7 * contrast * np.clip(walls - core, 0.0, None))).astype(np.float32)


def _dilate(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """(H, W) bool mask grown by a disc of ``radius_px``."""
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5) <= radius_px
