"""Diffusion filters on 0-255 grey images.

Units: intensities are grey levels of 0-255 data (``kappa`` too); time is in px^2;
the pixel grid is unit-spaced. Inputs may be uint8 or float; outputs are float32 in
the input's range (diffusion never creates new extrema), rounded by the caller.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from pipeline.imaging.spec import FilterSpec


def isotropic_diffusion(image: np.ndarray, time: float) -> np.ndarray:
    """Runs the heat equation dI/dt = div(grad I) for ``time``.

    Its exact solution is a convolution with a Gaussian of sigma = sqrt(2 * time) px,
    which is what this computes (reflecting borders).

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


def perona_malik_diffusion(image: np.ndarray, iterations: int, kappa: float, gamma: float,
                           conductance: str = "exponential") -> np.ndarray:
    """Perona-Malik anisotropic diffusion, explicit 4-neighbour scheme, zero-flux borders.

    The same discretisation as medpy's ``anisotropic_diffusion`` on a 2-D image
    (option 1 = exponential, option 2 = quadratic), without its GPL dependency.

    Args:
        image: (H, W) grey image, 0-255 (kappa is in these units).
        iterations: number of explicit steps, >= 0.
        kappa: edge threshold in grey levels; gradients well above it are preserved.
        gamma: step size, stable for 0 < gamma <= 0.25.
        conductance: ``exponential`` exp(-(g/kappa)^2) or ``quadratic`` 1/(1+(g/kappa)^2).

    Returns:
        (H, W) float32.
    """
    out = np.array(image, dtype=np.float32, copy=True)
    if out.ndim != 2:
        raise ValueError(f"perona_malik_diffusion needs a 2-D grey image, got shape {out.shape}")
    inv_kappa2 = np.float32(1.0 / (kappa * kappa))
    flux_y = np.zeros_like(out)
    flux_x = np.zeros_like(out)
    for _ in range(iterations):
        dy = np.diff(out, axis=0)  # south - north, (H-1, W)
        dx = np.diff(out, axis=1)  # east - west, (H, W-1)
        if conductance == "exponential":
            cy, cx = np.exp(-(dy * dy) * inv_kappa2), np.exp(-(dx * dx) * inv_kappa2)
        else:
            cy, cx = 1.0 / (1.0 + dy * dy * inv_kappa2), 1.0 / (1.0 + dx * dx * inv_kappa2)
        flux_y[:-1] = cy * dy
        flux_x[:, :-1] = cx * dx
        update = flux_y.copy()
        update[1:] -= flux_y[:-1]
        update += flux_x
        update[:, 1:] -= flux_x[:, :-1]
        out += np.float32(gamma) * update
    return out


def apply_filter(image: np.ndarray, spec: FilterSpec) -> np.ndarray:
    """Applies the filter named by ``spec`` and returns uint8 (rounded, clipped to 0-255).

    Args:
        image: (H, W) uint8 grey image.
        spec: the filter and its parameters.

    Returns:
        (H, W) uint8.
    """
    if spec.method == "none":
        return np.asarray(image, dtype=np.uint8).copy()
    if spec.method == "isotropic":
        filtered = isotropic_diffusion(image, spec.time)
    else:
        filtered = perona_malik_diffusion(image, spec.iterations, spec.kappa, spec.gamma, spec.conductance)
    return np.clip(np.rint(filtered), 0, 255).astype(np.uint8)
