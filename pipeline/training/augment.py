"""Training augmentation: one random draw per frame, applied to image and bitmask together.

Geometry (flips, rotation, scale, elastic deformation) moves image and mask together; the
packed bitmask is resampled with nearest-neighbour interpolation, so every pixel keeps a
label the frame had. The scanner look (speckle grain, gain, time-gain compensation, dynamic
range, gamma, contrast, brightness, noise) changes the image only
(:mod:`pipeline.training.intensity`), and so do the burned-in graphics drawn last
(:mod:`pipeline.training.overlays`).

:func:`draw_augmentation` makes every random choice for one frame and :func:`apply_augmentation`
applies them without drawing anything, so each step can be tested with chosen values. The
flip/rotation/scale/contrast/brightness draws come first, as before the scanner-variety
augmentations existed; each later step draws from its own child of the frame's generator,
so turning one on or off never changes what the others draw.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.augment_spec import AugmentParams
from pipeline.training.intensity import (add_noise, apply_gain, apply_gamma, change_dynamic_range, coarsen_speckle,
                                         smoothstep_weights, tgc_profile)
from pipeline.training.overlays import Overlay, burn_in, draw_overlays

_STEPS = ("vflip", "elastic", "speckle", "gain", "tgc", "dynamic_range", "gamma", "noise", "overlay")


@dataclass(frozen=True)
class FrameAugmentation:
    """Everything drawn for one frame; the defaults change nothing.

    Attributes:
        hflip, vflip: mirror left-right, upside down.
        angle_deg: rotation about the centre, degrees, counter-clockwise.
        scale: zoom about the centre (1: none).
        elastic_px: (2, G, G) float32 x and y displacements of a G x G lattice of control
            points, px, or None for no elastic deformation.
        speckle: down-sampling factor >= 1 (1: none).
        gain_db: overall gain, dB.
        tgc_db: (K,) depth-gain knots, dB, or None.
        dynamic_range_db: the dynamic range to show the frame with, dB, or None (unchanged).
        gamma: display gamma (1: none).
        contrast: grey factor (1: none).
        brightness: grey offset, grey levels (0: none).
        noise: (additive grey levels, multiplicative fraction) deviations, or None.
        noise_seed: seed of the noise fields.
        overlays: graphics burned into the image last (:mod:`pipeline.training.overlays`).
    """

    hflip: bool = False
    vflip: bool = False
    angle_deg: float = 0.0
    scale: float = 1.0
    elastic_px: np.ndarray | None = None
    speckle: float = 1.0
    gain_db: float = 0.0
    tgc_db: np.ndarray | None = None
    dynamic_range_db: float | None = None
    gamma: float = 1.0
    contrast: float = 1.0
    brightness: float = 0.0
    noise: tuple[float, float] | None = None
    noise_seed: int = 0
    overlays: tuple[Overlay, ...] = ()


def draw_augmentation(rng: np.random.Generator, params: AugmentParams, side: int) -> FrameAugmentation:
    """Draws one frame's augmentation.

    Args:
        rng: the frame's random source (same state -> same draw).
        params: probabilities and ranges (``train.augment``).
        side: S, the frame side, px (scales the elastic amplitude).

    Returns:
        The drawn augmentation.
    """
    flip = rng.random() < 0.5
    angle = rng.uniform(-params.rotate_deg, params.rotate_deg)
    scale = rng.uniform(1.0 - params.scale, 1.0 + params.scale)
    contrast = rng.uniform(1.0 - params.contrast, 1.0 + params.contrast)
    brightness = rng.uniform(-params.brightness, params.brightness) * 255.0
    step = dict(zip(_STEPS, rng.spawn(len(_STEPS))))

    def chosen(name: str, p: float) -> np.random.Generator | None:
        """The step's generator when the step is drawn to happen (probability ``p``), else None."""
        return step[name] if step[name].random() < p else None

    drawn: dict = {"hflip": params.hflip and flip, "vflip": params.vflip and step["vflip"].random() < 0.5,
                   "angle_deg": angle, "scale": scale, "contrast": contrast, "brightness": brightness}
    if source := chosen("elastic", params.elastic.p):
        grid = params.elastic.grid
        drawn["elastic_px"] = (source.uniform(-1.0, 1.0, (2, grid, grid)) * params.elastic.amplitude * side
                               ).astype(np.float32)
    if source := chosen("speckle", params.speckle.p):
        drawn["speckle"] = source.uniform(params.speckle.low, params.speckle.high)
    if source := chosen("gain", params.gain.p):
        drawn["gain_db"] = source.uniform(-params.gain.db, params.gain.db)
    if source := chosen("tgc", params.tgc.p):
        drawn["tgc_db"] = source.uniform(-params.tgc.db, params.tgc.db, params.tgc.knots)
    if source := chosen("dynamic_range", params.dynamic_range.p):
        drawn["dynamic_range_db"] = source.uniform(params.dynamic_range.low_db, params.dynamic_range.high_db)
    if source := chosen("gamma", params.gamma.p):
        drawn["gamma"] = float(np.exp(source.uniform(np.log(params.gamma.low), np.log(params.gamma.high))))
    if source := chosen("noise", params.noise.p):
        drawn["noise"] = (source.uniform(0.0, params.noise.additive), source.uniform(0.0, params.noise.multiplicative))
        drawn["noise_seed"] = int(source.integers(2**63))
    if source := chosen("overlay", params.overlay.p):
        drawn["overlays"] = draw_overlays(source, params.overlay)
    return FrameAugmentation(**drawn)


def displacement_field(control_px: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A smooth displacement field through a lattice of control-point displacements.

    Args:
        control_px: (2, G, G) x and y displacements, px, of G x G control points evenly
            spaced from edge to edge (the corners are control points).
        shape: (H, W) of the frame.

    Returns:
        (H, W, 2) float32 x and y displacements, px, interpolated along both axes by
        :func:`smoothstep_weights`: smooth, and never larger than the largest control displacement.
    """
    height, width = shape
    grid = control_px.shape[-1]
    rows, columns = smoothstep_weights(grid, height), smoothstep_weights(grid, width)
    return np.dstack([rows @ np.asarray(axis, np.float32) @ columns.T for axis in control_px])


@functools.lru_cache(maxsize=4)
def _pixel_grid(height: int, width: int) -> np.ndarray:
    """(H, W, 2) float32 x, y of every pixel, read-only (shared between calls)."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    grid = np.dstack([xs, ys])
    grid.flags.writeable = False
    return grid


def sampling_map(matrix: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """Where each output pixel samples the input: the affine map's inverse at the displaced position.

    Args:
        matrix: 2x3 affine matrix, input -> output pixel coordinates (as ``cv2.warpAffine`` takes it).
        displacement: (H, W, 2) x and y displacements of the output pixels, px.

    Returns:
        (H, W, 2) float32 input x, y coordinates, a ``cv2.remap`` map.
    """
    height, width = displacement.shape[:2]
    displaced = displacement + _pixel_grid(height, width)
    return cv2.transform(displaced, cv2.invertAffineTransform(matrix))


def _resample(array: np.ndarray, matrix: np.ndarray, sampling: np.ndarray | None, flags: int) -> np.ndarray:
    """(H, W) array through the affine ``matrix`` (or through the ``sampling`` map when given);
    uncovered pixels become 0."""
    array = np.ascontiguousarray(array)
    if sampling is None:
        height, width = array.shape
        return cv2.warpAffine(array, matrix, (width, height), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=0)
    return cv2.remap(array, sampling, None, flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def move(image: np.ndarray, mask: np.ndarray, augmentation: FrameAugmentation) -> tuple[np.ndarray, np.ndarray]:
    """The geometric part: flips, then rotation and scale about the centre, then the elastic field.

    Rotation, scale and the elastic field are one resampling (bilinear for the image,
    nearest neighbour for the mask); uncovered pixels become 0 (like letterbox padding).

    Args:
        image: (S, S) uint8 grey.
        mask: (S, S) uint8 bitmask.
        augmentation: the drawn values.

    Returns:
        The moved (S, S) uint8 image and (S, S) uint8 bitmask.
    """
    if augmentation.hflip:
        image, mask = image[:, ::-1], mask[:, ::-1]
    if augmentation.vflip:
        image, mask = image[::-1], mask[::-1]
    height, width = image.shape
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), augmentation.angle_deg, augmentation.scale)
    sampling = None if augmentation.elastic_px is None else \
        sampling_map(matrix, displacement_field(augmentation.elastic_px, (height, width)))
    return _resample(image, matrix, sampling, cv2.INTER_LINEAR), _resample(mask, matrix, sampling, cv2.INTER_NEAREST)


def restyle(image: np.ndarray, augmentation: FrameAugmentation, display_range_db: float) -> np.ndarray:
    """The scanner look: speckle, gain, TGC, dynamic range, gamma, contrast and brightness, noise.

    Computed in float32 and rounded once: ``clip(rint(g), 0, 255)``.

    Args:
        image: (H, W) uint8 grey.
        augmentation: the drawn values.
        display_range_db: the dynamic range the grey levels span, dB (``train.augment.display_range_db``).

    Returns:
        (H, W) uint8 grey.
    """
    grey = image.astype(np.float32)
    if augmentation.speckle != 1.0:
        grey = coarsen_speckle(grey, augmentation.speckle)
    if augmentation.gain_db != 0.0:
        grey = apply_gain(grey, augmentation.gain_db, display_range_db)
    if augmentation.tgc_db is not None:
        grey = apply_gain(grey, tgc_profile(augmentation.tgc_db, grey.shape[0]), display_range_db)
    if augmentation.dynamic_range_db is not None:
        grey = change_dynamic_range(grey, display_range_db, augmentation.dynamic_range_db)
    if augmentation.gamma != 1.0:
        grey = apply_gamma(grey, augmentation.gamma)
    grey = grey * augmentation.contrast + augmentation.brightness
    if augmentation.noise is not None:
        grey = add_noise(grey, *augmentation.noise, np.random.default_rng(augmentation.noise_seed))
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def augment(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
            params: AugmentParams) -> tuple[np.ndarray, np.ndarray]:
    """One random augmentation of a frame and its mask (:func:`draw_augmentation`, then apply).

    Args:
        image: (S, S) uint8 grey.
        mask: (S, S) uint8 bitmask.
        rng: the random source (same state -> same result).
        params: probabilities and ranges (``train.augment``).

    Returns:
        The augmented (S, S) uint8 image and (S, S) uint8 bitmask; the mask holds only
        values the input mask held (or 0, where the frame moved away).
    """
    augmentation = draw_augmentation(rng, params, image.shape[0])
    moved, moved_mask = move(image, mask, augmentation)
    return burn_in(restyle(moved, augmentation, params.display_range_db), augmentation.overlays), moved_mask
