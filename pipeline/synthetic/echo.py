"""Echogenicity of the synthetic phantom, in dB: tissue texture and everything that follows the beams.

Conventions as in :mod:`pipeline.synthetic.sector`: frame px, x right, y down; beams by
radius from the apex and angle from the fan's axis.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.synthetic.sector import FanGeometry, beam_shape

_RAYLEIGH_LOG_MEAN_DB = 2.51  # -E[10 log10 |z|^2] for a unit-power complex Gaussian z


def unit_length(fan: FanGeometry) -> float:
    """Length scale of small structures (capsule half-thickness), px."""
    return max(1.2, 0.0035 * fan.r_outer)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """(H, W) float32 zero-mean, about unit-std noise with features ~``cell`` px wide."""
    h, w = shape
    coarse = rng.standard_normal((int(h / cell) + 3, int(w / cell) + 3), dtype=np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def texture_db(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 dB tissue echogenicity: smooth variations, fascial planes (bright), vessels (dark).

    Drawn at quarter resolution, then upsampled: it has no fine detail.
    """
    h, w = shape[0] // 4, shape[1] // 4
    db = 3.0 * smooth_noise(rng, (h, w), h / 10) + 1.5 * smooth_noise(rng, (h, w), h / 35)
    for _ in range(int(rng.integers(5, 11))):
        centre = (int(rng.uniform(0.05, 0.95) * w), int(rng.uniform(0.15, 0.95) * h))
        axes = (int(rng.uniform(0.03, 0.12) * h) + 1, int(rng.uniform(0.004, 0.02) * h) + 1)
        cv2.ellipse(db, centre, axes, float(rng.uniform(-50, 50)), 0, 360, float(rng.choice([5.0, 5.0, -7.0])), -1)
    return cv2.resize(cv2.GaussianBlur(db, (0, 0), 1.0), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def beam_db(rng: np.random.Generator, fan: FanGeometry, attenuation_db: float,
            calcifications: np.ndarray) -> np.ndarray:
    """Everything that follows the beams, in dB on the (radius, angle) beam grid.

    Log-Rayleigh speckle (complex Gaussian scatter blurred more across beams than along
    them), the rectal wall, depth attenuation after TGC, darker sector edges, and bright
    calcifications with their acoustic shadows running away from the probe.

    Args:
        rng: random source.
        fan: the sector.
        attenuation_db: net depth loss after time-gain compensation, dB over the full depth.
        calcifications: (K, 2) x, y centres in frame pixels, K in 0..3.

    Returns:
        (n_radii, n_angles) float32 dB, see :func:`~pipeline.synthetic.sector.beam_shape`; row i is
        at radius i * r_outer / (n_radii - 1) px.
    """
    size_unit = unit_length(fan)
    n_r, n_t = beam_shape(fan)
    parts = rng.standard_normal((2, n_r, n_t), dtype=np.float32)
    re, im = (cv2.GaussianBlur(z, (0, 0), sigmaX=2.4, sigmaY=1.0) for z in parts)
    power = re * re + im * im
    db = cv2.GaussianBlur(10.0 * np.log10(power / power.mean() + 1e-6), (0, 0), 0.6) + _RAYLEIGH_LOG_MEAN_DB
    r = np.linspace(0.0, fan.r_outer, n_r, dtype=np.float32)[:, None]
    t = np.linspace(-fan.half_angle, fan.half_angle, n_t, dtype=np.float32)[None, :]
    wall = 4 * size_unit
    db += (8.0 * np.exp(-(((r - fan.r_inner - 1.5 * wall) / wall) ** 2))  # rectal wall
           - 5.0 * np.exp(-(((r - fan.r_inner - 3.5 * wall) / wall) ** 2))  # its muscular layer
           - attenuation_db * (r - fan.r_inner) / (fan.r_outer - fan.r_inner))
    db -= 6.0 * (t / fan.half_angle) ** 6
    for x, y in calcifications:
        dx, dy = x - fan.apex_x, (y - fan.apex_y) * fan.direction
        rc, tc, size = float(np.hypot(dx, dy)), float(np.arctan2(dx, dy)), rng.uniform(1.0, 2.0) * size_unit
        rows = slice(int((rc - 5 * size) * (n_r - 1) / fan.r_outer), None)
        cols = slice(*np.searchsorted(t[0], [tc - 10 * size / rc, tc + 10 * size / rc]))
        lateral = r[rows] * np.sin(t[:, cols] - tc) / (rng.uniform(1.5, 3.0) * size)  # short arcs across the beam
        axial = (r[rows] * np.cos(t[:, cols] - tc) - rc) / size
        db[rows, cols] += 30.0 * np.exp(-(lateral**2 + axial**2) / 2)
        db[rows, cols] -= rng.uniform(8.0, 14.0) * np.exp(-lateral**2) * np.clip(axial / 2, 0.0, 1.0)
    return db
