"""In-plane outlines of a frame's gland section, lesion cut and urethra, in mm, and their place in the frame.

In-plane coordinates ``(u, v)`` mm are those of :mod:`pipeline.synthetic.anatomy`: ``v``
anterior (away from the probe), ``u`` lateral (transverse) or caudal (sagittal: the base and
the bladder towards negative ``u``, the image's left). :class:`FramePose` maps them to frame
pixels (x right, y down).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.synthetic.anatomy import TRANSVERSE, FrameSlice, GlandAnatomy, LesionSection, section_scale


@dataclass(frozen=True)
class FramePose:
    """Where the gland's centre and axes lie in a frame.

    Attributes:
        centre_px: (x, y) frame px of the gland's centre (in-plane (0, 0)).
        px_per_mm: display scale, px per mm (the fan's px_per_cm / 10), isotropic.
        rotation: in-plane rotation of the gland, radians.
        direction: +1 when the probe is at the top (anterior is down the frame), -1 at the bottom.
    """

    centre_px: tuple[float, float]
    px_per_mm: float
    rotation: float
    direction: int

    def to_px(self, points_mm: np.ndarray) -> np.ndarray:
        """(N, 2) float64 frame x, y px of (N, 2) in-plane (u, v) mm points."""
        local = np.asarray(points_mm, np.float64) * self.px_per_mm
        local[:, 1] *= self.direction
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        return np.asarray(self.centre_px) + local @ np.array([[c, s], [-s, c]])

    def moved(self, shift_px: tuple[float, float], turn: float) -> FramePose:
        """The pose shifted by (dx, dy) px and turned by ``turn`` rad (the probe's small moves between frames)."""
        x, y = self.centre_px
        return FramePose((x + shift_px[0], y + shift_px[1]), self.px_per_mm, self.rotation + turn, self.direction)


def gland_section_mm(anatomy: GlandAnatomy, frame_slice: FrameSlice, rng: np.random.Generator | None = None,
                     n: int = 360) -> np.ndarray:
    """The outline of the gland's section by a slice.

    Transverse sections keep the patient's harmonics, posterior flattening and anterior taper;
    sagittal ones are flat posteriorly and thicker towards the base. The outline's bounding box
    is centred on (0, 0) and measures exactly (W, H) * s (transverse) or (L, H) * s (sagittal),
    with s = :func:`~pipeline.synthetic.anatomy.section_scale` (1 at mid-gland and on the midline).

    Args:
        anatomy: the patient's gland.
        frame_slice: a slice that cuts the gland.
        rng: per-frame wobble of the outline's harmonics; None: the patient's nominal outline.
        n: number of vertices.

    Returns:
        (n, 2) float64 (u, v) mm, counter-clockwise in (u, v).
    """
    transverse = frame_slice.plane == TRANSVERSE
    phi = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    rho = np.ones(n)
    for k, (amp, phase) in enumerate(anatomy.harmonics if transverse else anatomy.sagittal_harmonics, start=2):
        wobble = (0.0, 0.0) if rng is None else (rng.normal(0.0, 0.004), rng.normal(0.0, 0.05))
        rho += (amp + wobble[0]) * np.cos(k * phi + phase + wobble[1])
    rho *= 1.0 - anatomy.flattening * np.clip(-np.sin(phi), 0.0, None) ** 3  # flat against the rectum
    if transverse:
        local = np.stack([(1.0 - anatomy.taper * np.sin(phi)) * np.cos(phi), np.sin(phi)], 1)
        extents = (anatomy.width_mm, anatomy.height_mm)
    else:
        local = np.stack([np.cos(phi), np.sin(phi) * (1.0 - anatomy.base_bulge * np.cos(phi))], 1)
        extents = (anatomy.length_mm, anatomy.height_mm)
    local *= rho[:, None]
    low, high = local.min(axis=0), local.max(axis=0)
    return (local - (low + high) / 2) / (high - low) * np.asarray(extents) * section_scale(frame_slice)


def lesion_outline_mm(section: LesionSection, rng: np.random.Generator, n: int = 64) -> np.ndarray:
    """(n, 2) float64 (u, v) mm outline of a lesion's cut: its ellipse with a slightly irregular border (+-10 %)."""
    phi = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    rho = 1.0 + sum(rng.uniform(0.0, 0.035) * np.cos(k * phi + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    return np.asarray(section.centre_mm) + np.asarray(section.semi_axes_mm) * rho[:, None] * \
        np.stack([np.cos(phi), np.sin(phi)], 1)


def urethra_mm(anatomy: GlandAnatomy, n: int = 96) -> np.ndarray:
    """(n, 2) float64 (u, v) mm of the prostatic urethra in the midline sagittal plane, bladder neck to apex.

    A quadratic Bezier curve: from the bladder neck (cranial end, anterior of the centre)
    bending posteriorly at the verumontanum (mid-length) and on to the apex; it runs 5 %
    of L beyond the gland at both ends.
    """
    half_l, half_h = anatomy.length_mm / 2, anatomy.height_mm / 2
    start, bend, end = np.array([[-1.05 * half_l, 0.35 * half_h], [0.0, -0.25 * half_h], [1.05 * half_l, -0.1 * half_h]])
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * start + 2 * t * (1 - t) * bend + t**2 * end


def urethra_in_transverse_mm(anatomy: GlandAnatomy, frame_slice: FrameSlice) -> tuple[float, float]:
    """(u, v) mm where a transverse slice cuts the urethra: on the midline, at the curve's depth for that level."""
    curve = urethra_mm(anatomy)
    return 0.0, float(np.interp(-frame_slice.position * anatomy.length_mm / 2, curve[:, 0], curve[:, 1]))


def region_around(points_px: np.ndarray, shape: tuple[int, int], pad: int) -> tuple[slice, slice]:
    """(rows, columns) slices of the points' bounding box grown by ``pad`` px, clipped to a frame of ``shape``.

    Args:
        points_px: (N, 2) frame x, y px (may lie partly or wholly outside the frame).
        shape: (H, W) of the frame.
        pad: margin, px.

    Returns:
        The slices; an empty slice when the box misses the frame.
    """
    x0, y0 = np.floor(np.asarray(points_px).min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(np.asarray(points_px).max(axis=0)).astype(int) + pad + 1
    rows = slice(min(max(int(y0), 0), shape[0]), min(max(int(y1), 0), shape[0]))
    return rows, slice(min(max(int(x0), 0), shape[1]), min(max(int(x1), 0), shape[1]))
