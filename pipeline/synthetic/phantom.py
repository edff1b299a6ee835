"""Rendering of one synthetic B-mode transrectal-ultrasound (TRUS) phantom frame.

Conventions: x grows to the right and y downwards, in frame pixels. The probe sits at
the top centre (or, in the ``probe_bottom`` variants, the bottom centre); a beam is
addressed by its radius ``r`` from the sector apex (px) and its angle ``theta`` from the
fan's axis (radians, positive towards image right), see :mod:`pipeline.synthetic.sector`.
Echogenicity is built additively in decibels on whole-frame float32 arrays, then
log-compressed to 8-bit grey levels, so no Python loop ever runs over pixels.

The gland is the patient's 3-D gland (:mod:`pipeline.synthetic.anatomy`) cut by the frame's
slice, at its true size (:mod:`pipeline.synthetic.placement`); sagittal frames add the bladder
and seminal vesicles (:mod:`pipeline.synthetic.sagittal`). The ground truth is the outlines
themselves, at the precision the export writes (:mod:`pipeline.synthetic.ground_truth`); the
masks are those outlines rasterised by the readers' own rule, so reading the export back gives
the generator's masks exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.imaging.polygons import rasterise_polygon
from pipeline.synthetic.anatomy import (MID_GLAND, TRANSVERSE, FrameSlice, GlandAnatomy, draw_anatomy, lesion_section,
                                        outside_slice)
from pipeline.synthetic.echo import beam_db, smooth_noise, texture_db, unit_length
from pipeline.synthetic.ground_truth import export_precision, fit_inside
from pipeline.synthetic.overlays import draw_overlays
from pipeline.synthetic.placement import FAN_MARGIN, GlandPlacement, jittered_pose, place_gland
from pipeline.synthetic.sagittal import enhancement_db, surroundings
from pipeline.synthetic.sections import FramePose, gland_section_mm, lesion_outline_mm, region_around
from pipeline.synthetic.sector import FanGeometry, beam_maps, inside_fan, mask_box
from pipeline.synthetic.variants import DEFAULT, Variant, capture_noise, draw_fan

_DYNAMIC_RANGE_DB = 55.0  # display dynamic range mapped onto 0..255
_BASE_GREY = 120.0  # grey level of 0 dB tissue


@dataclass(frozen=True)
class PatientParams:
    """Everything drawn once per patient; the frames of an exam vary slightly around it.

    Attributes:
        fan: sector geometry and depth setting (deepened when the gland needs it).
        anatomy: the gland in 3-D, its lesion and surroundings, mm.
        placement: where the gland lies in transverse and in sagittal frames.
        echo_db: (gland interior, capsule rim, lesion) echogenicity, dB relative to the
            surrounding tissue (the lesion's relative to the gland).
        attenuation_db: net depth loss after time-gain compensation, dB over the full depth.
        gain_db: overall display gain offset, dB.
        enhancement_db: posterior acoustic enhancement beyond 15 mm of urine, dB.
        exam_time: made-up burned-in date and time, ``YYYY/MM/DD HH:MM:SS``.
    """

    fan: FanGeometry
    anatomy: GlandAnatomy
    placement: GlandPlacement
    echo_db: tuple[float, float, float]
    attenuation_db: float
    gain_db: float
    enhancement_db: float
    exam_time: str


@dataclass(frozen=True)
class PhantomFrame:
    """One rendered frame and its ground truth.

    Attributes:
        image: (H, W, 3) uint8 BGR; grey B-mode content plus burned-in text (coloured
            in the colour variants).
        gland_mask: (H, W) bool, ``gland_polygons`` rasterised (pixel-centre rule).
        lesion_mask: (H, W) bool, all False without a lesion; ``lesion_polygons`` rasterised,
            always inside ``gland_mask``.
        fan_mask: (H, W) bool, the ultrasound sector (the true fan, overlays ignored).
        gland_polygons: the gland outline, [] or one (N, 2) float32 array of x, y px with
            3-decimal values (as exported and read back).
        lesion_polygons: same, for the lesion.
        fan: the true sector geometry, frame px.
        frame_slice: the plane, level and position of the frame's slice through the patient.
    """

    image: np.ndarray
    gland_mask: np.ndarray
    lesion_mask: np.ndarray
    fan_mask: np.ndarray
    gland_polygons: list[np.ndarray]
    lesion_polygons: list[np.ndarray]
    fan: FanGeometry
    frame_slice: FrameSlice

    @property
    def fan_box(self) -> tuple[int, int, int, int]:
        """Bounding box (x, y, width, height) px of the true fan (of ``fan_mask``)."""
        return mask_box(self.fan_mask)

    @property
    def spacing_mm(self) -> float:
        """The pixel spacing, mm per px, isotropic: 10 / the fan's px_per_cm (the depth scale's)."""
        return 10.0 / self.fan.px_per_cm


def draw_patient(rng: np.random.Generator, width: int, height: int, variant: Variant = DEFAULT,
                 anatomy: GlandAnatomy | None = None, lesion_in: FrameSlice | None = None) -> PatientParams:
    """Draws the patient-level anatomy, probe setting and display settings.

    Args:
        rng: random source.
        width: frame width, px.
        height: frame height, px.
        variant: the scanner (probe side and field of view of the fan).
        anatomy: the patient's gland; None: drawn from ``rng`` after the fan.
        lesion_in: with ``anatomy`` None, give the gland a lesion that this slice cuts.

    Returns:
        The patient's parameters; the gland, at its true size, lies inside the fan in both planes.
    """
    fan = draw_fan(rng, width, height, variant)
    if anatomy is None:
        anatomy = draw_anatomy(rng, with_lesion=lesion_in is not None, lesion_in=lesion_in)
    fan, placement = place_gland(fan, anatomy, rotation=float(rng.uniform(-0.12, 0.12)),
                                 tilt=float(rng.uniform(-0.15, 0.1)), gap_mm=float(rng.uniform(3.0, 7.0)),
                                 lateral_mm=float(rng.uniform(-3.0, 3.0)), cranial_room=float(rng.uniform(0.1, 0.25)))
    when = np.datetime64("2021-01-01T08:00:00") + np.timedelta64(int(rng.integers(0, 4 * 365 * 86400)), "s")
    return PatientParams(
        fan=fan, anatomy=anatomy, placement=placement,
        echo_db=(float(rng.uniform(-7.5, -5.0)), float(rng.uniform(7.0, 10.0)), float(rng.uniform(-11.0, -7.5))),
        attenuation_db=float(rng.uniform(3.0, 7.0)),
        gain_db=float(rng.uniform(-3.0, 3.0)),
        enhancement_db=float(rng.uniform(4.0, 7.0)),
        exam_time=str(when).replace("-", "/").replace("T", " "),
    )


def render_phantom(rng: np.random.Generator, width: int, height: int, *, with_gland: bool = True,
                   with_lesion: bool, patient: PatientParams | None = None, frame_slice: FrameSlice = MID_GLAND,
                   label: str = "SIM", variant: Variant = DEFAULT, beam: bool = True) -> PhantomFrame:
    """Renders one B-mode TRUS phantom frame.

    Args:
        rng: random source for everything that changes from frame to frame.
        width: frame width, px.
        height: frame height, px.
        with_gland: the slice cuts the gland; False is a frame where the probe misses it (the
            slice is then :func:`~pipeline.synthetic.anatomy.outside_slice` of the same plane).
        with_lesion: show the patient's lesion, which the slice must cut (needs ``with_gland``).
        patient: patient-level parameters; drawn from ``rng`` when None (with a lesion in the
            slice when ``with_lesion``).
        frame_slice: the plane, level and position of the slice (transverse mid-gland by default).
        label: burned-in study identifier (no person names).
        variant: the scanner: fan (when ``patient`` is None), overlays and capture noise.
        beam: add the beam (speckle, depth attenuation, calcifications and their shadows,
            the bladder's enhancement). False renders the tissue's echo map alone, the same
            anatomy and masks for the same ``rng``: what an observer without speckle would see
            (``benchmarks/lesion_darkness.py``).

    Returns:
        The frame, its masks and polygons.

    Raises:
        ValueError: ``with_lesion`` without ``with_gland``, a gland slice that misses the
            gland, or a lesion the slice does not cut.
    """
    if with_lesion and not with_gland:
        raise ValueError("a lesion needs a gland")
    p = patient if patient is not None else \
        draw_patient(rng, width, height, variant, lesion_in=frame_slice if with_lesion else None)
    cut = frame_slice if with_gland else outside_slice(frame_slice.plane, p.anatomy.off_midline_side)
    if with_gland and not cut.shows_gland:
        raise ValueError(f"{cut} misses the gland")
    section = lesion_section(p.anatomy, cut) if with_lesion else None
    if with_lesion and section is None:
        raise ValueError(f"{cut} does not cut the patient's lesion")
    shape, unit = (height, width), unit_length(p.fan)
    pose = jittered_pose(rng, p.placement.pose(cut.plane), p.fan)
    db = texture_db(rng, shape)
    gland, lesion = np.zeros(shape, bool), np.zeros(shape, bool)
    sites = np.empty((0, 2), np.float32)
    gland_polygons: list[np.ndarray] = []
    lesion_polygons: list[np.ndarray] = []
    if with_gland:
        outline_mm = gland_section_mm(p.anatomy, cut, rng)
        outline = export_precision(_inside_fan(pose, p.placement.pose(cut.plane), outline_mm, p.fan))
        gland, gland_polygons = rasterise_polygon([outline], shape), [outline]
        roi = region_around(outline, shape, pad=int(18 * unit) + 4)
        origin = np.array([roi[1].start, roi[0].start], np.float32)
        inner = pose.to_px(_transition_zone_mm(p.anatomy, cut, outline_mm)) - origin
        db[roi] += _gland_db(rng, p, inner, gland[roi], unit)
        centre = outline.mean(axis=0)
        sites = centre + rng.uniform(0.2, 0.85, (3, 1)) * (outline[rng.integers(0, len(outline), 3)] - centre)
        if section is not None:
            lesion_outline, lesion = _lesion_in_gland(pose.to_px(lesion_outline_mm(section, rng)), gland, unit)
            lesion_polygons = [lesion_outline]
            db[roi] += p.echo_db[2] * _soft_fill(lesion_outline - origin, gland[roi].shape, 1.5 * unit)
            keep_out = lesion_outline  # calcifications stay clear of the lesion
            sites = np.array([s for s in sites if cv2.pointPolygonTest(keep_out, tuple(map(float, s)), True) < -4 * unit],
                             np.float32).reshape(-1, 2)
    around = surroundings(rng, p.anatomy, cut, pose, gland)
    db += around.db
    map_1, map_2, fan_mask = beam_maps(p.fan, width, height)
    if beam:
        beams = beam_db(rng, p.fan, p.attenuation_db, sites[: int(rng.integers(0, 4))])
        if around.bladder.any():
            beams += enhancement_db(p.fan, around.bladder, p.enhancement_db)
        db += cv2.remap(beams, map_1, map_2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    grey = np.clip(_BASE_GREY + (db + p.gain_db) * (255.0 / _DYNAMIC_RANGE_DB), 0, 255).astype(np.uint8)
    grey[~fan_mask] = 0
    image = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    draw_overlays(image, p.fan, _text_lines(p, label), fan_mask, variant, gland)
    if variant.jpeg_quality is not None:
        image = capture_noise(rng, image, variant.jpeg_quality)
    return PhantomFrame(image, gland, lesion, fan_mask.copy(), gland_polygons, lesion_polygons, p.fan, cut)


def _text_lines(p: PatientParams, label: str) -> dict[str, list[str]]:
    """The scanner's burned-in text blocks for one frame (all marked SYNTHETIC, no person names)."""
    return {
        "top_left": ["SYNTHETIC PHANTOM", "NOT PATIENT DATA", "SIMSONIC TR-700", "EC 7.5MHz",
                     f"Depth {p.fan.depth_cm:.1f}cm", f"Gain {50 + p.gain_db:.0f}dB", f"DR {_DYNAMIC_RANGE_DB:.0f}"],
        "bottom_left": ["SYNTHETIC", p.exam_time, f"ID {label}"],
        "top_right": ["TIS 0.4  MI 0.9", "FR 21Hz"],
    }


def _soft_fill(polygon: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """(H, W) float32 0..1 polygon raster blurred by a Gaussian of ``sigma`` px."""
    return cv2.GaussianBlur(rasterise_polygon([polygon], shape).astype(np.float32), (0, 0), sigma)


def _inside_fan(pose: FramePose, nominal: FramePose, outline_mm: np.ndarray, fan: FanGeometry) -> np.ndarray:
    """(N, 2) float64 frame px of a section outline: at the frame's pose, or at the nominal one if that left the fan."""
    outline = pose.to_px(outline_mm)
    return outline if inside_fan(outline, fan, FAN_MARGIN * fan.r_outer) else nominal.to_px(outline_mm)


def _transition_zone_mm(anatomy: GlandAnatomy, cut: FrameSlice, outline_mm: np.ndarray) -> np.ndarray:
    """(N, 2) (u, v) mm outline of the inner (transition) zone: the section scaled by ``tz_fraction``, anterior
    of the centre and, in sagittal frames, towards the base."""
    extent = np.ptp(outline_mm, axis=0)
    shift = np.array([0.0 if cut.plane == TRANSVERSE else -0.08 * extent[0], 0.1 * extent[1]])
    return anatomy.tz_fraction * outline_mm + shift


def _gland_db(rng: np.random.Generator, p: PatientParams, inner: np.ndarray, gland: np.ndarray,
              unit: float) -> np.ndarray:
    """dB change over a region around the gland: hypoechoic body, bright capsule, fat halo, inner zone.

    Args:
        inner: (N, 2) inner (transition) zone outline, in the region's x, y pixel coordinates.
        gland: (h, w) bool gland mask of the region (with a margin of tissue all round).
        unit: capsule half-thickness, px.

    Returns:
        (h, w) float32 dB to add to the region; an enlarged transition zone is larger, nodular,
        and ringed by a faint bright surgical capsule.
    """
    m = gland.astype(np.uint8)
    signed = cv2.distanceTransform(1 - m, cv2.DIST_L2, 5) - cv2.distanceTransform(m, cv2.DIST_L2, 5)
    inside = 1.0 / (1.0 + np.exp(np.clip(signed / (0.6 * unit), -30, 30)))
    db = (p.echo_db[0] * inside + p.echo_db[1] * np.exp(-((signed / (1.3 * unit)) ** 2))
          + 3.0 * np.exp(-(((signed - 6 * unit) / (5 * unit)) ** 2)))
    zone = _soft_fill(inner, gland.shape, 4 * unit) * inside
    if p.anatomy.enlarged_tz:
        nodules = 4.0 * smooth_noise(rng, gland.shape, gland.shape[0] / 14) - 1.0
        return (db + zone * nodules + 10.0 * zone * (1.0 - zone) * (zone > 0.05)).astype(np.float32)
    return (db + zone * (3.0 * smooth_noise(rng, gland.shape, gland.shape[0] / 8) - 2.0)).astype(np.float32)


def _lesion_in_gland(outline: np.ndarray, gland: np.ndarray, unit: float) -> tuple[np.ndarray, np.ndarray]:
    """A lesion outline fitted inside the gland, 4 capsule units + 2 px clear of its border when it can be.

    Args:
        outline: (N, 2) x, y px of the lesion's cut.
        gland: (H, W) bool gland mask.
        unit: capsule half-thickness, px.

    Returns:
        (outline, mask) as :func:`fit_inside` gives them; the mask is never empty.

    Raises:
        RuntimeError: no part of the lesion fits inside the gland.
    """
    depth = cv2.distanceTransform(gland.astype(np.uint8), cv2.DIST_L2, 5)
    fitted, mask = fit_inside(outline, depth > 4 * unit + 2)
    if mask.sum() < 0.25 * rasterise_polygon([outline], gland.shape).sum():  # a cut near the border
        fitted, mask = fit_inside(outline, gland)
    if not mask.any():
        raise RuntimeError("the lesion's cut does not fit inside the gland")
    return fitted, mask
