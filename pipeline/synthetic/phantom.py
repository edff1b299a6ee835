"""Rendering of one synthetic B-mode transrectal-ultrasound (TRUS) phantom frame.

Conventions: x grows to the right and y downwards, in frame pixels. The probe sits at
the top centre (or, in the ``probe_bottom`` variants, the bottom centre); a beam is
addressed by its radius ``r`` from the sector apex (px) and its angle ``theta`` from the
fan's axis (radians, positive towards image right), see :mod:`pipeline.synthetic.sector`.
Echogenicity is built additively in decibels on whole-frame float32 arrays, then
log-compressed to 8-bit grey levels, so no Python loop ever runs over pixels.

The ground truth is the outlines themselves, at the precision the export writes (3 decimals,
:func:`export_precision`); the masks are those outlines rasterised by the readers' own rule
(:func:`pipeline.imaging.polygons.rasterise_polygon`), so reading the export back gives the
generator's masks exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.imaging.polygons import rasterise_polygon
from pipeline.synthetic.echo import beam_db, smooth_noise, texture_db, unit_length
from pipeline.synthetic.overlays import draw_overlays
from pipeline.synthetic.sector import FanGeometry, beam_maps, inside_fan, mask_box
from pipeline.synthetic.variants import DEFAULT, Variant, capture_noise, draw_fan

_DYNAMIC_RANGE_DB = 55.0  # display dynamic range mapped onto 0..255
_BASE_GREY = 120.0  # grey level of 0 dB tissue
EXPORT_DECIMALS = 3  # Roboflow writes polygon coordinates with 3 decimals


@dataclass(frozen=True)
class PatientParams:
    """Everything drawn once per patient; frames of a sweep vary slightly around it.

    Attributes:
        fan: sector geometry and depth setting.
        gland_center: (x, y) of the gland centre, px.
        gland_axes: (lateral, axial) semi-axes of the gland, px.
        gland_rotation: in-plane rotation of the gland, radians.
        gland_harmonics: (relative amplitude, phase in radians) of the radius harmonics k = 2, 3, 4.
        gland_flattening: 0..1 flattening of the probe-side (rectal) gland border.
        gland_taper: 0..1 narrowing of the gland away from the probe (anteriorly).
        echo_db: (gland interior, capsule rim, lesion) echogenicity, dB relative to the
            surrounding tissue (the lesion's relative to the gland).
        attenuation_db: net depth loss after time-gain compensation, dB over the full depth.
        gain_db: overall display gain offset, dB.
        lesion_offset: preferred lesion centre, as a fraction of the gland semi-axes.
        lesion_area_fraction: lesion area over gland area, 0.025..0.06.
        exam_time: made-up burned-in date and time, ``YYYY/MM/DD HH:MM:SS``.
    """

    fan: FanGeometry
    gland_center: tuple[float, float]
    gland_axes: tuple[float, float]
    gland_rotation: float
    gland_harmonics: tuple[tuple[float, float], ...]
    gland_flattening: float
    gland_taper: float
    echo_db: tuple[float, float, float]
    attenuation_db: float
    gain_db: float
    lesion_offset: tuple[float, float]
    lesion_area_fraction: float
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
    """

    image: np.ndarray
    gland_mask: np.ndarray
    lesion_mask: np.ndarray
    fan_mask: np.ndarray
    gland_polygons: list[np.ndarray]
    lesion_polygons: list[np.ndarray]
    fan: FanGeometry

    @property
    def fan_box(self) -> tuple[int, int, int, int]:
        """Bounding box (x, y, width, height) px of the true fan (of ``fan_mask``)."""
        return mask_box(self.fan_mask)


def draw_patient(rng: np.random.Generator, width: int, height: int, variant: Variant = DEFAULT) -> PatientParams:
    """Draws the patient-level anatomy, probe setting and display settings.

    Args:
        rng: random source.
        width: frame width, px.
        height: frame height, px.
        variant: the scanner (probe side and field of view of the fan).

    Returns:
        The patient's parameters; the gland is sized to fit well inside the fan.
    """
    fan = draw_fan(rng, width, height, variant)
    apex_y, r_outer = fan.apex_y, fan.r_outer
    r_c, t_c = rng.uniform(0.45, 0.52) * r_outer, rng.uniform(-0.08, 0.08)
    lateral = rng.uniform(0.25, 0.31) * r_outer
    when = np.datetime64("2021-01-01T08:00:00") + np.timedelta64(int(rng.integers(0, 4 * 365 * 86400)), "s")
    return PatientParams(
        fan=fan,
        gland_center=(float(fan.apex_x + r_c * np.sin(t_c)), float(apex_y + fan.direction * r_c * np.cos(t_c))),
        gland_axes=(float(lateral), float(lateral * rng.uniform(0.62, 0.8))),
        gland_rotation=float(rng.uniform(-0.12, 0.12)),
        gland_harmonics=tuple((float(rng.uniform(lo, hi)), float(rng.uniform(0, 2 * np.pi)))
                              for lo, hi in ((0.02, 0.06), (0.02, 0.05), (0.0, 0.025))),
        gland_flattening=float(rng.uniform(0.06, 0.16)),
        gland_taper=float(rng.uniform(0.08, 0.22)),
        echo_db=(float(rng.uniform(-7.5, -5.0)), float(rng.uniform(7.0, 10.0)), float(rng.uniform(-11.0, -7.5))),
        attenuation_db=float(rng.uniform(3.0, 7.0)),
        gain_db=float(rng.uniform(-3.0, 3.0)),
        lesion_offset=(float(rng.uniform(-0.5, 0.5)), fan.direction * float(rng.uniform(-0.6, 0.2))),
        lesion_area_fraction=float(rng.uniform(0.025, 0.06)),
        exam_time=str(when).replace("-", "/").replace("T", " "),
    )


def render_phantom(rng: np.random.Generator, width: int, height: int, *, with_gland: bool = True,
                   with_lesion: bool, patient: PatientParams | None = None, sweep: float = 0.0,
                   label: str = "SIM", variant: Variant = DEFAULT) -> PhantomFrame:
    """Renders one B-mode TRUS phantom frame.

    Args:
        rng: random source for everything that changes from frame to frame.
        width: frame width, px.
        height: frame height, px.
        with_gland: draw the prostate; False is a frame where the probe misses it.
        with_lesion: draw a hypoechoic lesion well inside the gland (needs ``with_gland``).
        patient: patient-level parameters; drawn from ``rng`` when None.
        sweep: position of the frame in the sweep through the gland, -1..1 (0 = mid-gland).
        label: burned-in study identifier (no person names).
        variant: the scanner: fan (when ``patient`` is None), overlays and capture noise.

    Returns:
        The frame, its masks and polygons.

    Raises:
        ValueError: ``with_lesion`` without ``with_gland``.
    """
    if with_lesion and not with_gland:
        raise ValueError("a lesion needs a gland")
    p = patient if patient is not None else draw_patient(rng, width, height, variant)
    shape, unit = (height, width), unit_length(p.fan)
    db = texture_db(rng, shape)
    gland, lesion = np.zeros(shape, bool), np.zeros(shape, bool)
    sites = np.empty((0, 2), np.float32)
    gland_polygons: list[np.ndarray] = []
    lesion_polygons: list[np.ndarray] = []
    if with_gland:
        outline = export_precision(_gland_outline(rng, p, sweep))
        gland, gland_polygons = rasterise_polygon([outline], shape), [outline]
        roi = _roi(outline, shape, pad=int(18 * unit) + 4)
        origin = np.array([roi[1].start, roi[0].start], np.float32)
        db[roi] += _gland_db(rng, p, outline - origin, gland[roi], unit)
        centre = outline.mean(axis=0)
        sites = centre + rng.uniform(0.2, 0.85, (3, 1)) * (outline[rng.integers(0, len(outline), 3)] - centre)
        if with_lesion:
            lesion_outline = _lesion_outline(rng, p, outline - origin, gland[roi], unit) + origin
            lesion_outline, lesion = fit_inside(lesion_outline, gland)
            lesion_polygons = [lesion_outline]
            db[roi] += p.echo_db[2] * _soft_fill(lesion_outline - origin, gland[roi].shape, 1.5 * unit)
            keep_out = lesion_outline  # calcifications stay clear of the lesion
            sites = np.array([s for s in sites if cv2.pointPolygonTest(keep_out, tuple(map(float, s)), True) < -4 * unit],
                             np.float32).reshape(-1, 2)
    map_1, map_2, fan_mask = beam_maps(p.fan, width, height)
    beams = beam_db(rng, p.fan, p.attenuation_db, sites[: int(rng.integers(0, 4))])
    db += cv2.remap(beams, map_1, map_2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    grey = np.clip(_BASE_GREY + (db + p.gain_db) * (255.0 / _DYNAMIC_RANGE_DB), 0, 255).astype(np.uint8)
    grey[~fan_mask] = 0
    image = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    draw_overlays(image, p.fan, _text_lines(p, label), fan_mask, variant, gland)
    if variant.jpeg_quality is not None:
        image = capture_noise(rng, image, variant.jpeg_quality)
    return PhantomFrame(image, gland, lesion, fan_mask.copy(), gland_polygons, lesion_polygons, p.fan)


def _text_lines(p: PatientParams, label: str) -> dict[str, list[str]]:
    """The scanner's burned-in text blocks for one frame (all marked SYNTHETIC, no person names)."""
    return {
        "top_left": ["SYNTHETIC PHANTOM", "NOT PATIENT DATA", "SIMSONIC TR-700", "EC 7.5MHz",
                     f"Depth {p.fan.depth_cm:.1f}cm", f"Gain {50 + p.gain_db:.0f}dB", f"DR {_DYNAMIC_RANGE_DB:.0f}"],
        "bottom_left": ["SYNTHETIC", p.exam_time, f"ID {label}"],
        "top_right": ["TIS 0.4  MI 0.9", "FR 21Hz"],
    }


def export_precision(outline: np.ndarray) -> np.ndarray:
    """An outline as the export writes it and the readers hold it.

    Args:
        outline: (N, 2) x, y px.

    Returns:
        (N, 2) float32: each coordinate rounded to :data:`EXPORT_DECIMALS` decimals (Python's
        ``round``, as the COCO writer rounds), then float32, as the COCO reader converts the
        JSON numbers; written and read back, it is the same array bit for bit.
    """
    values = [round(float(v), EXPORT_DECIMALS) for v in np.asarray(outline, np.float64).ravel()]
    return np.asarray(values, np.float32).reshape(-1, 2)


def fit_inside(outline: np.ndarray, container: np.ndarray, step: float = 0.97) -> tuple[np.ndarray, np.ndarray]:
    """Shrinks an outline about its centroid until its raster lies inside a mask.

    Args:
        outline: (N, 2) x, y px, inside or mostly inside ``container``.
        container: (H, W) bool, e.g. the gland mask.
        step: scale applied per attempt, 0 < step < 1.

    Returns:
        (outline, mask): the outline at export precision, shrunk only when its raster
        overflows, and that (H, W) bool raster, inside ``container`` (empty when nothing fits).
    """
    centre = np.asarray(outline, np.float64).mean(axis=0)
    scale = 1.0
    while True:
        fitted = export_precision(centre + scale * (np.asarray(outline, np.float64) - centre))
        mask = rasterise_polygon([fitted], container.shape)
        if not (mask & ~container).any():
            return fitted, mask
        scale *= step


def _roi(polygon: np.ndarray, shape: tuple[int, int], pad: int) -> tuple[slice, slice]:
    """(rows, columns) slices of the polygon's bounding box grown by ``pad`` px, clipped to the frame."""
    x0, y0 = np.maximum(np.floor(polygon.min(axis=0)).astype(int) - pad, 0)
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + pad + 1
    return slice(int(y0), min(int(y1), shape[0])), slice(int(x0), min(int(x1), shape[1]))


def _soft_fill(polygon: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """(H, W) float32 0..1 polygon raster blurred by a Gaussian of ``sigma`` px."""
    return cv2.GaussianBlur(rasterise_polygon([polygon], shape).astype(np.float32), (0, 0), sigma)


def _gland_outline(rng: np.random.Generator, p: PatientParams, sweep: float, n: int = 360) -> np.ndarray:
    """(n, 2) float32 x, y outline of the gland for one frame, fully inside the fan.

    The gland shrinks towards the ends of the sweep (base and apex of the prostate).
    """
    phi = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    rho = np.ones(n)
    for k, (amp, phase) in enumerate(p.gland_harmonics, start=2):
        rho += (amp + rng.normal(0.0, 0.004)) * np.cos(k * phi + phase + rng.normal(0.0, 0.05))
    rho *= 1.0 - p.gland_flattening * np.clip(-np.sin(phi), 0.0, None) ** 3
    scale = (1.0 - 0.3 * sweep**2) * rng.uniform(0.97, 1.03)
    taper = 1.0 - p.gland_taper * np.sin(phi)  # narrower anteriorly (away from the probe)
    local = np.stack([p.gland_axes[0] * taper * np.cos(phi), p.gland_axes[1] * np.sin(phi)], 1)
    local *= (rho * scale)[:, None]
    if p.fan.direction < 0:  # probe at the bottom: the rectal side is the lower one
        local[:, 1] = -local[:, 1]
    rot = p.gland_rotation + rng.normal(0.0, 0.03)
    rotation = np.array([[np.cos(rot), np.sin(rot)], [-np.sin(rot), np.cos(rot)]])
    centre = np.asarray(p.gland_center) + rng.normal(0.0, 0.008 * p.fan.r_outer, 2)
    while not inside_fan(centre + local @ rotation, p.fan, margin=0.04 * p.fan.r_outer):
        local *= 0.95
    return (centre + local @ rotation).astype(np.float32)


def _gland_db(rng: np.random.Generator, p: PatientParams, outline: np.ndarray, gland: np.ndarray,
              unit: float) -> np.ndarray:
    """dB change over a region around the gland: hypoechoic body, bright capsule, fat halo, inner zone.

    Args:
        outline: (N, 2) gland outline, in the region's x, y pixel coordinates.
        gland: (h, w) bool gland mask of the region (with a margin of tissue all round).
        unit: capsule half-thickness, px.

    Returns:
        (h, w) float32 dB to add to the region.
    """
    m = gland.astype(np.uint8)
    signed = cv2.distanceTransform(1 - m, cv2.DIST_L2, 5) - cv2.distanceTransform(m, cv2.DIST_L2, 5)
    inside = 1.0 / (1.0 + np.exp(np.clip(signed / (0.6 * unit), -30, 30)))
    db = (p.echo_db[0] * inside + p.echo_db[1] * np.exp(-((signed / (1.3 * unit)) ** 2))
          + 3.0 * np.exp(-(((signed - 6 * unit) / (5 * unit)) ** 2)))
    centre = outline.mean(axis=0)
    inner = centre + 0.62 * (outline - centre) + (0.0, p.fan.direction * 0.1 * np.ptp(outline[:, 1]))  # TZ, anterior
    zone = _soft_fill(inner, gland.shape, 4 * unit)
    return (db + zone * (3.0 * smooth_noise(rng, gland.shape, gland.shape[0] / 8) - 2.0)).astype(np.float32)


def _lesion_outline(rng: np.random.Generator, p: PatientParams, gland_outline: np.ndarray, gland: np.ndarray,
                    unit: float) -> np.ndarray:
    """(64, 2) float32 x, y outline of an irregular lesion well inside the gland.

    Args:
        gland_outline: (N, 2) gland outline, in the x, y pixel coordinates of ``gland``.
        gland: (h, w) bool gland mask.
        unit: capsule half-thickness, px; the lesion keeps 4 units + 2 px from the gland border.
    """
    area = gland.sum() * p.lesion_area_fraction * rng.uniform(0.9, 1.1)
    inside = cv2.distanceTransform(gland.astype(np.uint8), cv2.DIST_L2, 5)
    margin = 4 * unit + 2
    radius = min(np.sqrt(area / np.pi), (inside.max() - margin) / 1.25)
    ys, xs = np.nonzero(inside >= 1.25 * radius + margin)
    half = np.ptp(gland_outline, axis=0) / 2
    target = gland_outline.mean(axis=0) + (np.asarray(p.lesion_offset) + rng.normal(0, 0.05, 2)) * half
    best = int(np.argmin((xs - target[0]) ** 2 + (ys - target[1]) ** 2))
    phi = np.linspace(0.0, 2 * np.pi, 64, endpoint=False)
    rho = 1.0 + sum(rng.uniform(0.0, 0.06) * np.cos(k * phi + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    ratio = rng.uniform(0.75, 1.0)
    local = radius * rho[:, None] * np.stack([np.cos(phi) / np.sqrt(ratio), np.sin(phi) * np.sqrt(ratio)], 1)
    return (np.array([xs[best], ys[best]]) + local).astype(np.float32)
