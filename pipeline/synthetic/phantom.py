"""Rendering of one synthetic B-mode transrectal-ultrasound (TRUS) phantom frame.

Conventions: x grows to the right and y downwards, in frame pixels. The probe sits at
the top centre; a beam is addressed by its radius ``r`` from the sector apex (px) and its
angle ``theta`` from the downward vertical (radians, positive towards image right).
Echogenicity is built additively in decibels on whole-frame float32 arrays, then
log-compressed to 8-bit grey levels, so no Python loop ever runs over pixels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

_DYNAMIC_RANGE_DB = 55.0  # display dynamic range mapped onto 0..255
_BASE_GREY = 120.0  # grey level of 0 dB tissue
_RAYLEIGH_LOG_MEAN_DB = 2.51  # -E[10 log10 |z|^2] for a unit-power complex Gaussian z
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class FanGeometry:
    """The ultrasound sector, in frame pixels.

    Attributes:
        apex_x: x of the sector apex (virtual probe centre), px.
        apex_y: y of the sector apex, px.
        r_inner: radius of the transducer face (the fan's top arc), px.
        r_outer: radius of the fan's far arc, px.
        half_angle: half the opening angle, radians.
        depth_cm: displayed imaging depth from ``r_inner`` to ``r_outer``, cm.
    """

    apex_x: float
    apex_y: float
    r_inner: float
    r_outer: float
    half_angle: float
    depth_cm: float

    @property
    def px_per_cm(self) -> float:
        """Display scale along a beam, px per cm."""
        return (self.r_outer - self.r_inner) / self.depth_cm


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
        image: (H, W, 3) uint8 BGR; grey B-mode content plus burned-in text.
        gland_mask: (H, W) bool.
        lesion_mask: (H, W) bool, all False without a lesion; always inside ``gland_mask``.
        fan_mask: (H, W) bool, the ultrasound sector.
        gland_polygons: each (N, 2) float32 x, y pixel coordinates of an outer contour.
        lesion_polygons: same, for the lesion.
    """

    image: np.ndarray
    gland_mask: np.ndarray
    lesion_mask: np.ndarray
    fan_mask: np.ndarray
    gland_polygons: list[np.ndarray]
    lesion_polygons: list[np.ndarray]


def draw_patient(rng: np.random.Generator, width: int, height: int) -> PatientParams:
    """Draws the patient-level anatomy, probe setting and display settings.

    Args:
        rng: random source.
        width: frame width, px.
        height: frame height, px.

    Returns:
        The patient's parameters; the gland is sized to fit well inside the fan.
    """
    half = float(rng.uniform(np.radians(46.0), np.radians(56.0)))
    apex_y = 0.02 * height
    r_outer = min(0.93 * height - apex_y, 0.42 * width / np.sin(half))
    fan = FanGeometry(width / 2.0, apex_y, 0.065 * height, float(r_outer), half,
                      float(rng.choice([5.5, 6.0, 6.5, 7.0])))
    r_c, t_c = rng.uniform(0.45, 0.52) * r_outer, rng.uniform(-0.08, 0.08)
    lateral = rng.uniform(0.25, 0.31) * r_outer
    when = np.datetime64("2021-01-01T08:00:00") + np.timedelta64(int(rng.integers(0, 4 * 365 * 86400)), "s")
    return PatientParams(
        fan=fan,
        gland_center=(float(fan.apex_x + r_c * np.sin(t_c)), float(apex_y + r_c * np.cos(t_c))),
        gland_axes=(float(lateral), float(lateral * rng.uniform(0.62, 0.8))),
        gland_rotation=float(rng.uniform(-0.12, 0.12)),
        gland_harmonics=tuple((float(rng.uniform(lo, hi)), float(rng.uniform(0, 2 * np.pi)))
                              for lo, hi in ((0.02, 0.06), (0.02, 0.05), (0.0, 0.025))),
        gland_flattening=float(rng.uniform(0.06, 0.16)),
        gland_taper=float(rng.uniform(0.08, 0.22)),
        echo_db=(float(rng.uniform(-7.5, -5.0)), float(rng.uniform(7.0, 10.0)), float(rng.uniform(-11.0, -7.5))),
        attenuation_db=float(rng.uniform(3.0, 7.0)),
        gain_db=float(rng.uniform(-3.0, 3.0)),
        lesion_offset=(float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.6, 0.2))),
        lesion_area_fraction=float(rng.uniform(0.025, 0.06)),
        exam_time=str(when).replace("-", "/").replace("T", " "),
    )


def render_phantom(rng: np.random.Generator, width: int, height: int, *, with_gland: bool = True,
                   with_lesion: bool, patient: PatientParams | None = None, sweep: float = 0.0,
                   label: str = "SIM") -> PhantomFrame:
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

    Returns:
        The frame, its masks and polygons.

    Raises:
        ValueError: ``with_lesion`` without ``with_gland``.
    """
    if with_lesion and not with_gland:
        raise ValueError("a lesion needs a gland")
    p = patient if patient is not None else draw_patient(rng, width, height)
    shape, unit = (height, width), _unit(p.fan)
    db = _texture_db(rng, shape)
    gland, lesion = np.zeros(shape, bool), np.zeros(shape, bool)
    sites = np.empty((0, 2), np.float32)
    if with_gland:
        outline = _gland_outline(rng, p, sweep)
        gland = _fill(outline, shape)
        roi = _roi(outline, shape, pad=int(18 * unit) + 4)
        origin = np.array([roi[1].start, roi[0].start], np.float32)
        db[roi] += _gland_db(rng, p, outline - origin, gland[roi], unit)
        centre = outline.mean(axis=0)
        sites = centre + rng.uniform(0.2, 0.85, (3, 1)) * (outline[rng.integers(0, len(outline), 3)] - centre)
        if with_lesion:
            lesion_outline = _lesion_outline(rng, p, outline - origin, gland[roi], unit)
            lesion = _fill(lesion_outline + origin, shape) & gland
            db[roi] += p.echo_db[2] * _soft_fill(lesion_outline, gland[roi].shape, 1.5 * unit)
            keep_out = lesion_outline + origin  # calcifications stay clear of the lesion
            sites = np.array([s for s in sites if cv2.pointPolygonTest(keep_out, tuple(map(float, s)), True) < -4 * unit],
                             np.float32).reshape(-1, 2)
    map_1, map_2, fan_mask = _beam_maps(p.fan, width, height)
    beams = _beam_db(rng, p, sites[: int(rng.integers(0, 4))])
    db += cv2.remap(beams, map_1, map_2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    grey = np.clip(_BASE_GREY + (db + p.gain_db) * (255.0 / _DYNAMIC_RANGE_DB), 0, 255).astype(np.uint8)
    grey[~fan_mask] = 0
    image = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    _draw_overlays(image, p, label)
    return PhantomFrame(image, gland, lesion, fan_mask.copy(), mask_to_polygons(gland), mask_to_polygons(lesion))


def mask_to_polygons(mask: np.ndarray, max_epsilon: float = 0.75) -> list[np.ndarray]:
    """Outer contours of a mask, lightly simplified, largest first.

    The Douglas-Peucker tolerance is 2 % of the square root of the contour's area, capped
    at ``max_epsilon`` px, so that small objects are not eroded: rasterising a polygon
    back (``cv2.fillPoly``) reproduces its component with IoU >= 0.97.

    Args:
        mask: (H, W) bool.
        max_epsilon: largest simplification tolerance, px (<= 1).

    Returns:
        One (N, 2) float32 array of x, y pixel coordinates per connected component, N >= 3.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    simplified = [cv2.approxPolyDP(c, min(max_epsilon, 0.02 * np.sqrt(cv2.contourArea(c))), True)
                  .reshape(-1, 2).astype(np.float32) for c in contours]
    return sorted((s for s in simplified if len(s) >= 3), key=lambda s: -cv2.contourArea(s))


def _unit(fan: FanGeometry) -> float:
    """Length scale of small structures (capsule half-thickness), px."""
    return max(1.2, 0.0035 * fan.r_outer)


def _beam_shape(fan: FanGeometry) -> tuple[int, int]:
    """(radii, angles) of the beam grid: 1.3 px axial and 2 px lateral (at the far arc) spacing."""
    return int(fan.r_outer / 1.3) + 2, int(2 * fan.half_angle * fan.r_outer / 2.0) + 2


@functools.lru_cache(maxsize=4)
def _beam_maps(fan: FanGeometry, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read-only fixed-point ``cv2.remap`` maps from the beam grid to the frame, and the (H, W) bool fan mask."""
    x = np.arange(width, dtype=np.float32)[None, :] - np.float32(fan.apex_x)
    y = np.arange(height, dtype=np.float32)[:, None] - np.float32(fan.apex_y)
    r, theta = np.sqrt(x * x + y * y), np.arctan2(x, y)
    n_r, n_t = _beam_shape(fan)
    map_x = (theta + np.float32(fan.half_angle)) * np.float32((n_t - 1) / (2 * fan.half_angle))
    map_1, map_2 = cv2.convertMaps(map_x, r * np.float32((n_r - 1) / fan.r_outer), cv2.CV_16SC2)
    fan_mask = (r >= fan.r_inner) & (r <= fan.r_outer) & (np.abs(theta) <= fan.half_angle)
    for array in (map_1, map_2, fan_mask):
        array.setflags(write=False)
    return map_1, map_2, fan_mask


def _roi(polygon: np.ndarray, shape: tuple[int, int], pad: int) -> tuple[slice, slice]:
    """(rows, columns) slices of the polygon's bounding box grown by ``pad`` px, clipped to the frame."""
    x0, y0 = np.maximum(np.floor(polygon.min(axis=0)).astype(int) - pad, 0)
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + pad + 1
    return slice(int(y0), min(int(y1), shape[0])), slice(int(x0), min(int(x1), shape[1]))


def _fill(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool raster of an (N, 2) float x, y polygon, with 1/16 px vertex precision."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return mask.astype(bool)


def _soft_fill(polygon: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """(H, W) float32 0..1 polygon raster blurred by a Gaussian of ``sigma`` px."""
    return cv2.GaussianBlur(_fill(polygon, shape).astype(np.float32), (0, 0), sigma)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """(H, W) float32 zero-mean, about unit-std noise with features ~``cell`` px wide."""
    h, w = shape
    coarse = rng.standard_normal((int(h / cell) + 3, int(w / cell) + 3), dtype=np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def _texture_db(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 dB tissue echogenicity: smooth variations, fascial planes (bright), vessels (dark).

    Drawn at quarter resolution, then upsampled: it has no fine detail.
    """
    h, w = shape[0] // 4, shape[1] // 4
    db = 3.0 * _smooth_noise(rng, (h, w), h / 10) + 1.5 * _smooth_noise(rng, (h, w), h / 35)
    for _ in range(int(rng.integers(5, 11))):
        centre = (int(rng.uniform(0.05, 0.95) * w), int(rng.uniform(0.15, 0.95) * h))
        axes = (int(rng.uniform(0.03, 0.12) * h) + 1, int(rng.uniform(0.004, 0.02) * h) + 1)
        cv2.ellipse(db, centre, axes, float(rng.uniform(-50, 50)), 0, 360, float(rng.choice([5.0, 5.0, -7.0])), -1)
    return cv2.resize(cv2.GaussianBlur(db, (0, 0), 1.0), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


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
    rot = p.gland_rotation + rng.normal(0.0, 0.03)
    rotation = np.array([[np.cos(rot), np.sin(rot)], [-np.sin(rot), np.cos(rot)]])
    centre = np.asarray(p.gland_center) + rng.normal(0.0, 0.008 * p.fan.r_outer, 2)
    while not _inside_fan(centre + local @ rotation, p.fan, margin=0.04 * p.fan.r_outer):
        local *= 0.95
    return (centre + local @ rotation).astype(np.float32)


def _inside_fan(points: np.ndarray, fan: FanGeometry, margin: float) -> bool:
    """True when every (x, y) point lies in the fan at least ``margin`` px from its border."""
    dx, dy = points[:, 0] - fan.apex_x, points[:, 1] - fan.apex_y
    r, theta = np.hypot(dx, dy), np.arctan2(dx, dy)
    return bool(np.all((r >= fan.r_inner + margin) & (r <= fan.r_outer - margin)
                       & (r * np.sin(fan.half_angle - np.abs(theta)) >= margin)))


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
    inner = centre + 0.62 * (outline - centre) + (0.0, 0.1 * np.ptp(outline[:, 1]))  # transition zone, anterior
    zone = _soft_fill(inner, gland.shape, 4 * unit)
    return (db + zone * (3.0 * _smooth_noise(rng, gland.shape, gland.shape[0] / 8) - 2.0)).astype(np.float32)


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


def _beam_db(rng: np.random.Generator, p: PatientParams, calcifications: np.ndarray) -> np.ndarray:
    """Everything that follows the beams, in dB on the (radius, angle) beam grid.

    Log-Rayleigh speckle (complex Gaussian scatter blurred more across beams than along
    them), the rectal wall, depth attenuation after TGC, darker sector edges, and bright
    calcifications with their acoustic shadows running away from the probe.

    Args:
        calcifications: (K, 2) x, y centres in frame pixels, K in 0..3.

    Returns:
        (n_radii, n_angles) float32, see ``_beam_shape``; row i is at radius i * r_outer / (n_radii - 1).
    """
    fan, unit = p.fan, _unit(p.fan)
    n_r, n_t = _beam_shape(fan)
    parts = rng.standard_normal((2, n_r, n_t), dtype=np.float32)
    re, im = (cv2.GaussianBlur(z, (0, 0), sigmaX=2.4, sigmaY=1.0) for z in parts)
    power = re * re + im * im
    db = cv2.GaussianBlur(10.0 * np.log10(power / power.mean() + 1e-6), (0, 0), 0.6) + _RAYLEIGH_LOG_MEAN_DB
    r = np.linspace(0.0, fan.r_outer, n_r, dtype=np.float32)[:, None]
    t = np.linspace(-fan.half_angle, fan.half_angle, n_t, dtype=np.float32)[None, :]
    wall = 4 * unit
    db += (8.0 * np.exp(-(((r - fan.r_inner - 1.5 * wall) / wall) ** 2))  # rectal wall
           - 5.0 * np.exp(-(((r - fan.r_inner - 3.5 * wall) / wall) ** 2))  # its muscular layer
           - p.attenuation_db * (r - fan.r_inner) / (fan.r_outer - fan.r_inner))
    db -= 6.0 * (t / fan.half_angle) ** 6
    for x, y in calcifications:
        dx, dy = x - fan.apex_x, y - fan.apex_y
        rc, tc, size = float(np.hypot(dx, dy)), float(np.arctan2(dx, dy)), rng.uniform(1.0, 2.0) * unit
        rows = slice(int((rc - 5 * size) * (n_r - 1) / fan.r_outer), None)
        cols = slice(*np.searchsorted(t[0], [tc - 10 * size / rc, tc + 10 * size / rc]))
        lateral = r[rows] * np.sin(t[:, cols] - tc) / (rng.uniform(1.5, 3.0) * size)  # short arcs across the beam
        axial = (r[rows] * np.cos(t[:, cols] - tc) - rc) / size
        db[rows, cols] += 30.0 * np.exp(-(lateral**2 + axial**2) / 2)
        db[rows, cols] -= rng.uniform(8.0, 14.0) * np.exp(-lateral**2) * np.clip(axial / 2, 0.0, 1.0)
    return db


def _draw_overlays(image: np.ndarray, p: PatientParams, label: str) -> None:
    """Burns scanner text, a depth scale and a focus marker into the black margins, in place."""
    h, w = image.shape[:2]
    fan, scale, thick = p.fan, h / 1700, max(1, round(h / 700))
    step, colour = int(34 * scale) + 2, (230, 230, 230)

    def put(text: str, x: int, y: int) -> None:
        cv2.putText(image, text, (x, y), _FONT, scale, colour, thick, cv2.LINE_AA)

    top_left = ["SYNTHETIC PHANTOM", "NOT PATIENT DATA", "SIMSONIC TR-700", "EC 7.5MHz",
                f"Depth {fan.depth_cm:.1f}cm", f"Gain {50 + p.gain_db:.0f}dB", f"DR {_DYNAMIC_RANGE_DB:.0f}"]
    for i, text in enumerate(top_left):
        put(text, int(0.012 * w), step * (i + 1))
    for i, text in enumerate(reversed(["SYNTHETIC", p.exam_time, f"ID {label}"])):
        put(text, int(0.012 * w), h - int(0.4 * step) - step * i)
    x_scale = int(fan.apex_x + fan.r_outer * np.sin(fan.half_angle) + 0.02 * w)
    for i, text in enumerate(["TIS 0.4  MI 0.9", "FR 21Hz"]):
        (tw, _), _ = cv2.getTextSize(text, _FONT, scale, thick)
        put(text, x_scale - tw - int(0.01 * w), step * (i + 1))
    for half_cm in range(int(2 * fan.depth_cm) + 1):
        y = int(round(fan.apex_y + fan.r_inner + half_cm / 2 * fan.px_per_cm))
        major = half_cm % 2 == 0
        cv2.line(image, (x_scale, y), (x_scale + int((0.012 if major else 0.006) * w), y), colour, thick)
        if major:
            put(str(half_cm // 2), x_scale + int(0.016 * w), y + int(0.3 * step))
    y_focus = int(fan.apex_y + fan.r_inner + 0.5 * fan.depth_cm * fan.px_per_cm)
    size = max(2, int(0.008 * w))
    cv2.fillPoly(image, [np.array([[x_scale - 2 * size, y_focus - size], [x_scale - 2 * size, y_focus + size],
                                   [x_scale - size // 2, y_focus]], np.int32)], colour)
