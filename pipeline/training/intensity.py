"""How another scanner would have shown the same frame: transforms of the 0-255 display values.

Every function takes and returns an (H, W) float32 image of grey levels in [0, 255] (the
preprocessed frame as float) and draws nothing itself: the random values come from
:mod:`pipeline.training.augment`. A scanner log-compresses echo amplitudes: a display
dynamic range of D dB spans the grey levels 0-255, so a gain of G dB adds 255 * G / D grey
levels to every pixel that shows an echo. Pixels at exactly 0 (outside the fan, letterbox
padding) show no echo; gain, time-gain compensation and dynamic range leave them at 0.
"""

from __future__ import annotations

import cv2
import numpy as np

WHITE = 255.0


def _keep_black(changed: np.ndarray, image: np.ndarray) -> np.ndarray:
    """``changed`` (float32, modified in place) with 0 wherever ``image`` is 0 (no echo)."""
    changed *= image > 0
    return changed


def apply_gain(image: np.ndarray, gain_db: float | np.ndarray, display_range_db: float) -> np.ndarray:
    """Adds a gain in dB to every non-zero pixel, the display saturating at 0 and 255.

    Args:
        image: (H, W) float32 grey levels in [0, 255].
        gain_db: one gain for the whole frame, or an (H,) profile, one gain per row (TGC), dB.
        display_range_db: the dynamic range the frame's 0-255 grey levels span, dB (> 0).

    Returns:
        (H, W) float32 in [0, 255]: ``clip(g + 255 * gain / display_range)`` where g > 0, else 0.
    """
    shift = np.asarray(gain_db, np.float32) * np.float32(WHITE / display_range_db)
    shifted = image + (shift[:, None] if shift.ndim == 1 else shift)
    return _keep_black(np.clip(shifted, 0.0, WHITE, out=shifted), image)


def smoothstep_weights(knots: int, length: int) -> np.ndarray:
    """Weights that interpolate K knots, evenly spaced from the first sample to the last, smoothly.

    Between two knots the weight moves from one to the other along the smoothstep 3t^2 - 2t^3:
    continuous with a continuous slope, flat at every knot, and each sample a convex
    combination of its two neighbouring knots (never beyond their range).

    Args:
        knots: K >= 2.
        length: N >= 1 samples; knot k sits at sample k * (N - 1) / (K - 1).

    Returns:
        (N, K) float32; each row sums to 1.
    """
    position = np.linspace(0.0, knots - 1.0, length)
    left = np.minimum(position.astype(int), knots - 2)
    t = position - left
    step = t * t * (3.0 - 2.0 * t)
    weights = np.zeros((length, knots))
    weights[np.arange(length), left] = 1.0 - step
    weights[np.arange(length), left + 1] += step
    return weights.astype(np.float32)


def tgc_profile(knots_db: np.ndarray, rows: int) -> np.ndarray:
    """A smooth depth-gain curve through equally spaced knots, from the first row to the last.

    The knots are drawn independently, so nothing assumes the probe at the top or the
    bottom; the curve between them is :func:`smoothstep_weights`'.

    Args:
        knots_db: (K,) gains in dB, K >= 2, at rows 0, (H-1)/(K-1), ..., H-1.
        rows: H, the image height, px (>= 1).

    Returns:
        (H,) float32 gain per row, dB.
    """
    return smoothstep_weights(len(knots_db), rows) @ np.asarray(knots_db, np.float32)


def change_dynamic_range(image: np.ndarray, display_range_db: float, new_range_db: float) -> np.ndarray:
    """Shows the frame with another log-compression dynamic range, white kept white.

    A grey level g is the echo level 255 - g grey levels (times D / 255 dB) below the
    saturation level; with a range D' it becomes ``255 + (g - 255) * D / D'``: a wider
    range flattens the contrast, a narrower one steepens it.

    Args:
        image: (H, W) float32 grey levels in [0, 255].
        display_range_db: D, the range the frame was shown with, dB (> 0).
        new_range_db: D', the range to show it with, dB (> 0).

    Returns:
        (H, W) float32 in [0, 255]; pixels at 0 stay 0.
    """
    ratio = np.float32(display_range_db / new_range_db)
    remapped = image * ratio
    remapped += np.float32(WHITE * (1.0 - ratio))
    return _keep_black(np.clip(remapped, 0.0, WHITE, out=remapped), image)


def apply_gamma(image: np.ndarray, gamma: float) -> np.ndarray:
    """A display gamma: ``255 * (g / 255) ** gamma``; 0 and 255 stay put, gamma 1 changes nothing.

    Args:
        image: (H, W) float32 grey levels in [0, 255].
        gamma: the exponent, > 0 (< 1 brightens the mid-greys, > 1 darkens them).

    Returns:
        (H, W) float32 in [0, 255].
    """
    return (WHITE * np.power(image / np.float32(WHITE), np.float32(gamma))).astype(np.float32)


def coarsen_speckle(image: np.ndarray, factor: float) -> np.ndarray:
    """Coarser speckle, as a scanner of lower resolution makes it: down-sampled by ``factor``, then back.

    Args:
        image: (H, W) float32 grey levels in [0, 255].
        factor: >= 1; the frame is area-averaged to round(H / factor) x round(W / factor) px
            and linearly interpolated back to H x W. A factor that rounds to the same size
            returns the image unchanged.

    Returns:
        (H, W) float32 in [0, 255].
    """
    height, width = image.shape
    small = (max(1, round(width / factor)), max(1, round(height / factor)))
    if small == (width, height):
        return image
    reduced = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
    return cv2.resize(reduced, (width, height), interpolation=cv2.INTER_LINEAR)


def add_noise(image: np.ndarray, additive: float, multiplicative: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise as a video grabber and the electronics add it, on every pixel.

    Args:
        image: (H, W) float32 grey levels in [0, 255].
        additive: standard deviation of added noise, grey levels (>= 0).
        multiplicative: standard deviation of a per-pixel gain 1 + n, a fraction (>= 0).
        rng: the source of the (H, W) standard normal field n (drawn even when a deviation is 0).

    Returns:
        (H, W) float32 ``g * (1 + multiplicative * n) + additive * n'``, not clipped (the
        caller rounds and clips once, at the end). n' is n rolled by half the frame in both
        directions: at every pixel an independent standard normal value, for the cost of one field.
    """
    field = rng.standard_normal(image.shape, dtype=np.float32)
    height, width = image.shape
    noisy = image * field
    noisy *= np.float32(multiplicative)
    noisy += image
    noisy += np.float32(additive) * np.roll(field, (height // 2, width // 2), axis=(0, 1))
    return noisy
