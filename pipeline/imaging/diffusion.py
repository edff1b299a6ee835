"""Diffusion filters on 0-255 grey images, and :func:`apply_filter`, their one entry point.

Units: intensities are grey levels of 0-255 data (``kappa`` too); time is in px^2 on the
unit-spaced pixel grid. Inputs may be uint8 or float; the filters return float32 in the
input's range (none creates new extrema); :func:`apply_filter` rounds to uint8.

The explicit schemes run on float32 buffers allocated once per call, with OpenCV's
vectorised element-wise operations (``cv2.subtract``/``multiply``/``exp``) in place:
5-7 times faster than the same arithmetic in numpy (whose ``exp`` alone is ~10x slower).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from pipeline.imaging.spec import FilterSpec
from pipeline.imaging.srad import srad_diffusion


def isotropic_diffusion(image: np.ndarray, time: float) -> np.ndarray:
    """Runs the heat equation dI/dt = div(grad I) for ``time``.

    Its exact solution is a convolution with a Gaussian of sigma = sqrt(2 * time) px,
    which is what this computes (kernel truncated at 4 sigma, reflecting borders).

    Args:
        image: (H, W) grey image, 0-255.
        time: diffusion time t >= 0, px^2; 0 returns the image unchanged.

    Returns:
        (H, W) float32.
    """
    out = np.asarray(image, dtype=np.float32)
    if time <= 0:
        return out.copy()
    sigma = math.sqrt(2.0 * time)
    return cv2.GaussianBlur(out, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def _flux(ahead: np.ndarray, behind: np.ndarray, diff: np.ndarray, work: np.ndarray,
          inv_kappa2: float, conductance: str) -> None:
    """Writes c(d) * d, d = ahead - behind, into ``diff``: the flux along one axis.

    All arrays share one shape, float32 (views of the image and of its buffers); ``work``
    is scratch space.
    """
    cv2.subtract(ahead, behind, diff)
    if conductance == "exponential":  # c = exp(-(d / kappa)^2)
        cv2.multiply(diff, diff, work, scale=-inv_kappa2)
        cv2.exp(work, work)
        cv2.multiply(work, diff, diff)
    else:  # quadratic: c = 1 / (1 + (d / kappa)^2)
        cv2.multiply(diff, diff, work, scale=inv_kappa2)
        cv2.add(work, 1.0, work)
        cv2.divide(diff, work, diff)


def perona_malik_diffusion(image: np.ndarray, iterations: int, kappa: float, gamma: float,
                           conductance: str = "exponential") -> np.ndarray:
    """Perona-Malik anisotropic diffusion, explicit 4-neighbour scheme, zero-flux borders.

    Each step adds ``gamma * sum over the 4 neighbours of c(d) * d``, d = neighbour - pixel,
    with c(d) = exp(-(d/kappa)^2) or 1 / (1 + (d/kappa)^2). This is the discretisation of
    medpy's ``anisotropic_diffusion`` on a 2-D image (option 1 = exponential, option 2 =
    quadratic, unit voxel spacing, the same kappa in the image's own units) without its
    GPL dependency; the tests cross-check the two. As c is in (0, 1], every step is a
    convex combination of a pixel and its neighbours when gamma <= 1/4: stable, and no
    new extrema.

    Args:
        image: (H, W) grey image, 0-255 (kappa is in these units).
        iterations: number of explicit steps, >= 0.
        kappa: edge threshold, grey levels, > 0; differences well above it barely diffuse.
        gamma: time step, px^2, in (0, 0.25].
        conductance: ``exponential`` or ``quadratic``.

    Returns:
        (H, W) float32.

    Raises:
        ValueError: the image is not 2-D, or kappa, gamma or conductance is out of range.
    """
    out = np.array(image, dtype=np.float32, copy=True, order="C")
    if out.ndim != 2:
        raise ValueError(f"perona_malik_diffusion needs a 2-D grey image, got shape {out.shape}")
    if not (kappa > 0 and 0 < gamma <= 0.25 and conductance in ("exponential", "quadratic")):
        raise ValueError(f"need kappa > 0, 0 < gamma <= 0.25 and a known conductance, got "
                         f"{kappa}, {gamma}, {conductance!r}")
    rows, cols = out.shape
    if iterations == 0 or out.size == 0:
        return out
    if rows < 2 or cols < 2:  # one row / column: diffuse two identical copies (no flux between them)
        doubled = np.tile(out, (2 if rows < 2 else 1, 2 if cols < 2 else 1))
        diffused = perona_malik_diffusion(doubled, iterations, kappa, gamma, conductance)
        return np.ascontiguousarray(diffused[:rows, :cols])
    inv_kappa2 = 1.0 / (kappa * kappa)
    south, east, divergence = np.zeros_like(out), np.zeros_like(out), np.empty_like(out)
    for _ in range(iterations):
        # fluxes to the south / east neighbour (last row / column stay 0: zero flux) ...
        _flux(out[1:], out[:-1], south[:-1], divergence[:-1], inv_kappa2, conductance)
        _flux(out[:, 1:], out[:, :-1], east[:, :-1], divergence[:, :-1], inv_kappa2, conductance)
        # ... their divergence, then a single rounding of the image per step, as in medpy
        # (four in-place updates would double the float32 drift from medpy and float64)
        divergence[0] = south[0]
        cv2.subtract(south[1:], south[:-1], divergence[1:])
        cv2.add(divergence, east, divergence)
        cv2.subtract(divergence[:, 1:], east[:, :-1], divergence[:, 1:])
        cv2.scaleAdd(divergence, gamma, out, out)
    return out


def to_uint8(filtered: np.ndarray) -> np.ndarray:
    """Rounds half to even and saturates a float image to 0-255: (H, W) -> (H, W) uint8.

    Equal to ``np.clip(np.rint(filtered), 0, 255).astype(np.uint8)``, in one OpenCV pass.
    """
    return cv2.add(np.asarray(filtered, dtype=np.float32), 0.0, dtype=cv2.CV_8U)


def apply_filter(image: np.ndarray, spec: FilterSpec) -> np.ndarray:
    """Applies the filter named by ``spec`` and returns uint8 (rounded, clipped to 0-255).

    Args:
        image: (H, W) uint8 grey image, 0-255.
        spec: the filter and its parameters (see :class:`FilterSpec` for units and ranges).

    Returns:
        (H, W) uint8; a copy of ``image`` for ``none``.
    """
    if spec.method == "none":
        return np.asarray(image, dtype=np.uint8).copy()
    if spec.method == "isotropic":
        filtered = isotropic_diffusion(image, spec.time)
    elif spec.method == "perona_malik":
        filtered = perona_malik_diffusion(image, spec.iterations, spec.kappa, spec.gamma, spec.conductance)
    else:
        filtered = srad_diffusion(image, spec.srad_iterations, spec.srad_step, spec.srad_window,
                                  spec.srad_dynamic_range_db)
    return to_uint8(filtered)
