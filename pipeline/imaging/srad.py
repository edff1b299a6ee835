"""Speckle-reducing anisotropic diffusion (SRAD) on log-compressed 0-255 B-mode images.

Y. Yu and S. T. Acton, "Speckle reducing anisotropic diffusion", IEEE Trans. Image
Processing 11(11):1260-1270, 2002. SRAD diffuses the *envelope* J, where speckle is
multiplicative, with a coefficient c(q) driven by the instantaneous coefficient of
variation (ICOV) q, an edge detector that is scale-free in J:

    q^2 = (|grad J|^2 / (2 J^2) - (lap J)^2 / (16 J^2)) / (1 + lap J / (4 J))^2
    c(q) = 1 / (1 + (q^2 - q0^2) / (q0^2 (1 + q0^2)))          (their eq. 33)

with the 4-neighbour differences of the paper. q0(t), the coefficient of variation of
fully developed speckle, is estimated at every step as the median, over windows of
``window`` x ``window`` px that hold image content, of the local std / mean of J
(the robust estimator of Aja-Fernandez and Alberola-Lopez, IEEE TIP 15(9), 2006) - no
hand-picked homogeneous region, and it follows the speckle as it is smoothed.

Discretisation (units: time in px^2, unit grid, zero-flux borders): each step adds
``step * [c(i+1,j) d_S + c(i,j) d_N + c(i,j+1) d_E + c(i,j) d_W]`` to J(i,j), the
paper's scheme with its Delta t / 4 written as ``step``; the flux between two pixels uses
one coefficient from both sides, so J's mean is kept. c is clamped to [0, 1] (c > 1
where q < q0), so for step <= 1/4 each step is a convex combination of a pixel and its
neighbours: stable, and no new extrema. The grey levels map to J by undoing the display
log compression, J = 10^(g * dr / (20 * 255)), and back after the last step.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

CONTENT_FLOOR = 8.0  # grey levels: darker windows (padding, outside the fan) are not speckle
_MIN_Q0_SQUARED = 1e-6  # a flat image has q0 = 0; floored so c stays defined


def decompress(image: np.ndarray, dynamic_range_db: float) -> np.ndarray:
    """Grey levels -> envelope: (H, W) 0-255 -> (H, W) float32 >= 1.

    J = 10^(g * dr / (20 * 255)) for ``dynamic_range_db`` dr > 0 (1 at black, 10^(dr/20)
    at white); for dr = 0, J = g + 1.
    """
    grey = np.asarray(image, dtype=np.float32)
    if dynamic_range_db == 0:
        return cv2.add(grey, 1.0)
    return cv2.exp(cv2.multiply(grey, dynamic_range_db * math.log(10.0) / (20.0 * 255.0)))


def compress(envelope: np.ndarray, dynamic_range_db: float) -> np.ndarray:
    """Inverse of :func:`decompress`: (H, W) float32 envelope >= 1 -> (H, W) float32 grey levels."""
    if dynamic_range_db == 0:
        return cv2.subtract(envelope, 1.0)
    return cv2.multiply(cv2.log(envelope), 20.0 * 255.0 / (dynamic_range_db * math.log(10.0)))


def _block_means(image: np.ndarray, window: int) -> np.ndarray:
    """Means of the non-overlapping window x window blocks: (H, W) -> (H // window, W // window)."""
    rows, cols = image.shape[0] // window, image.shape[1] // window
    return cv2.resize(image[: rows * window, : cols * window], (cols, rows), interpolation=cv2.INTER_AREA)


def speckle_q0_squared(envelope: np.ndarray, window: int, content: np.ndarray) -> float:
    """q0(t)^2: the median squared coefficient of variation of J over content windows.

    Args:
        envelope: (H, W) float32 J > 0.
        window: block side, px (at most min(H, W)).
        content: (H // window, W // window) bool, the blocks that hold tissue; all blocks
            are used when none does.

    Returns:
        q0^2 (dimensionless, >= 1e-6).
    """
    mean = _block_means(envelope, window)
    mean_sq = _block_means(cv2.multiply(envelope, envelope), window)
    cv_sq = np.maximum(mean_sq - mean * mean, 0.0) / (mean * mean)
    values = cv_sq[content] if content.any() else cv_sq.ravel()
    return max(float(np.median(values)), _MIN_Q0_SQUARED)


def srad_diffusion(image: np.ndarray, iterations: int, step: float, window: int,
                   dynamic_range_db: float) -> np.ndarray:
    """Speckle-reducing anisotropic diffusion of a log-compressed grey image.

    Args:
        image: (H, W) grey image, 0-255 (uint8 or float).
        iterations: explicit steps, >= 0 (total time = iterations * step px^2).
        step: time step, px^2, in (0, 0.25].
        window: side of the windows, px (>= 2), for q0; clipped to the image size.
        dynamic_range_db: display dynamic range, dB, that mapped the envelope onto 0-255;
            0 diffuses g + 1 directly.

    Returns:
        (H, W) float32 grey levels within the input's range.

    Raises:
        ValueError: the image is not 2-D, or step, window or dynamic range is out of range.
    """
    grey = np.asarray(image, dtype=np.float32)
    if grey.ndim != 2:
        raise ValueError(f"srad_diffusion needs a 2-D grey image, got shape {grey.shape}")
    if not (0 < step <= 0.25 and window >= 2 and dynamic_range_db >= 0):
        raise ValueError(f"need 0 < step <= 0.25, window >= 2, dynamic range >= 0; got {step}, {window}, "
                         f"{dynamic_range_db}")
    rows, cols = grey.shape
    if iterations == 0 or grey.size == 0:
        return grey.copy()
    if rows < 2 or cols < 2:  # one row / column: diffuse two identical copies (no flux between them)
        doubled = np.tile(grey, (2 if rows < 2 else 1, 2 if cols < 2 else 1))
        diffused = srad_diffusion(doubled, iterations, step, window, dynamic_range_db)
        return np.ascontiguousarray(diffused[:rows, :cols])
    window = min(window, *grey.shape)
    content = _block_means(grey, window) >= CONTENT_FLOOR
    j = decompress(grey, dynamic_range_db)
    south, east, work, total, coeff = (np.zeros_like(j) for _ in range(5))
    for _ in range(iterations):
        q0_sq = speckle_q0_squared(j, window, content)
        _scaled_coefficient(j, q0_sq, step, south, east, work, total, coeff)
        # the flux between a pixel and its south / east neighbour uses the neighbour's c
        cv2.multiply(coeff[1:], south[:-1], south[:-1])
        cv2.multiply(coeff[:, 1:], east[:, :-1], east[:, :-1])
        cv2.add(j[:-1], south[:-1], j[:-1])
        cv2.subtract(j[1:], south[:-1], j[1:])
        cv2.add(j[:, :-1], east[:, :-1], j[:, :-1])
        cv2.subtract(j[:, 1:], east[:, :-1], j[:, 1:])
    return compress(j, dynamic_range_db)


def _scaled_coefficient(j: np.ndarray, q0_sq: float, step: float, south: np.ndarray, east: np.ndarray,
                        work: np.ndarray, total: np.ndarray, coeff: np.ndarray) -> None:
    """Fills ``south``/``east`` with J's forward differences and ``coeff`` with step * c(q).

    All arrays are (H, W) float32; ``south[-1]`` and ``east[:, -1]`` stay 0 (zero flux);
    ``work`` and ``total`` are scratch. With m = J + lap(J) / 4 (the mean of the 4
    neighbours, >= min J > 0), the ICOV is q^2 = (|grad J|^2 / 2 - lap(J)^2 / 16) / m^2
    (numerator >= |grad J|^2 / 4 >= 0 by Cauchy-Schwarz), and eq. 33 becomes
    c = q0^2 (1 + q0^2) m^2 / (|grad J|^2 / 2 - lap(J)^2 / 16 + q0^4 m^2), clamped to <= 1.
    """
    cv2.subtract(j[1:], j[:-1], south[:-1])
    cv2.subtract(j[:, 1:], j[:, :-1], east[:, :-1])
    cv2.multiply(south, south, total)  # |grad J|^2 = d_S^2 + d_N^2 + d_E^2 + d_W^2
    cv2.accumulateSquare(south[:-1], total[1:])
    cv2.accumulateSquare(east, total)
    cv2.accumulateSquare(east[:, :-1], total[:, 1:])
    lap = cv2.Laplacian(j, cv2.CV_32F, dst=work, ksize=1, borderType=cv2.BORDER_REPLICATE)
    cv2.multiply(lap, lap, coeff)
    cv2.addWeighted(total, 0.5, coeff, -1.0 / 16.0, 0.0, total)  # numerator of q^2
    m_sq = cv2.scaleAdd(lap, 0.25, j, work)
    cv2.multiply(m_sq, m_sq, m_sq)
    cv2.scaleAdd(m_sq, q0_sq * q0_sq, total, total)
    cv2.divide(m_sq, total, coeff, scale=step * q0_sq * (1.0 + q0_sq))
    cv2.min(coeff, step, coeff)
