"""The training augmentations' parameters (``train.augment`` in params.yaml), typed and checked.

Read by :mod:`pipeline.config` as part of ``TrainParams``; applied by
:mod:`pipeline.training.augment`. Units: dB for gains and dynamic ranges, grey levels
(0-255) for additive noise, degrees for rotation, fractions for scale, brightness,
contrast, multiplicative noise and elastic amplitude (of the frame side). Every
scanner-variety augmentation has a probability ``p`` (0 turns it off) and a range.
A bad value raises ValueError naming the key under ``train.augment`` (``gain.db``), which
:func:`pipeline.config.build` turns into a ParamsError naming the file.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field


def _check_range(key: str, value: object, low: float, high: float, unit: str = "") -> None:
    """Raises ValueError unless ``value`` is a number (not a bool) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        raise ValueError(f"{key} must be a number in [{low:g}, {high:g}]{unit}, got {value!r}")


def _check_whole(key: str, value: object, low: int, high: int) -> None:
    """Raises ValueError unless ``value`` is an integer (not a bool) in low..high."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ValueError(f"{key} must be a whole number in {low}..{high}, got {value!r}")


def _check_interval(keys: tuple[str, str], values: tuple[float, float], low: float, high: float,
                    unit: str = "") -> None:
    """Raises ValueError unless both ``values`` (named ``keys``) lie in [low, high], the first <= the second."""
    for key, value in zip(keys, values):
        _check_range(key, value, low, high, unit)
    if values[0] > values[1]:
        raise ValueError(f"{keys[0]} must be <= {keys[1]}, got {values[0]} > {values[1]}")


@dataclass(frozen=True)
class GainAugment:
    """Overall gain (``train.augment.gain``): with probability ``p``, uniform in +-``db`` dB (0..40)."""

    p: float = 0.5
    db: float = 6.0

    def __post_init__(self) -> None:
        _check_range("gain.p", self.p, 0, 1)
        _check_range("gain.db", self.db, 0, 40, " dB")


@dataclass(frozen=True)
class TgcAugment:
    """Depth gain, time-gain compensation (``train.augment.tgc``): with probability ``p``, ``knots``
    (2..32) gains uniform in +-``db`` dB (0..40), evenly spaced from the first row to the last."""

    p: float = 0.5
    db: float = 6.0
    knots: int = 5

    def __post_init__(self) -> None:
        _check_range("tgc.p", self.p, 0, 1)
        _check_range("tgc.db", self.db, 0, 40, " dB")
        _check_whole("tgc.knots", self.knots, 2, 32)


@dataclass(frozen=True)
class DynamicRangeAugment:
    """Log-compression dynamic range (``train.augment.dynamic_range``): with probability ``p``, the
    frame is shown with a range uniform in [``low_db``, ``high_db``] dB (10..120)."""

    p: float = 0.5
    low_db: float = 45.0
    high_db: float = 80.0

    def __post_init__(self) -> None:
        _check_range("dynamic_range.p", self.p, 0, 1)
        _check_interval(("dynamic_range.low_db", "dynamic_range.high_db"), (self.low_db, self.high_db), 10, 120, " dB")


@dataclass(frozen=True)
class GammaAugment:
    """Display gamma (``train.augment.gamma``): with probability ``p``, log-uniform in [``low``, ``high``]
    (0.2..5; 1 is identity)."""

    p: float = 0.5
    low: float = 0.7
    high: float = 1.4

    def __post_init__(self) -> None:
        _check_range("gamma.p", self.p, 0, 1)
        _check_interval(("gamma.low", "gamma.high"), (self.low, self.high), 0.2, 5)


@dataclass(frozen=True)
class SpeckleAugment:
    """Speckle grain (``train.augment.speckle``): with probability ``p``, down-sampled by a factor uniform
    in [``low``, ``high``] (1..8; 1 is identity) and back."""

    p: float = 0.25
    low: float = 1.0
    high: float = 2.0

    def __post_init__(self) -> None:
        _check_range("speckle.p", self.p, 0, 1)
        _check_interval(("speckle.low", "speckle.high"), (self.low, self.high), 1, 8)


@dataclass(frozen=True)
class NoiseAugment:
    """Gaussian noise (``train.augment.noise``): with probability ``p``, additive with a deviation uniform
    in [0, ``additive``] grey levels (0..64) and multiplicative in [0, ``multiplicative``] (fraction, 0..1)."""

    p: float = 0.25
    additive: float = 6.0
    multiplicative: float = 0.1

    def __post_init__(self) -> None:
        _check_range("noise.p", self.p, 0, 1)
        _check_range("noise.additive", self.additive, 0, 64, " grey levels")
        _check_range("noise.multiplicative", self.multiplicative, 0, 1)


@dataclass(frozen=True)
class ElasticAugment:
    """Elastic deformation (``train.augment.elastic``): with probability ``p``, a ``grid`` x ``grid``
    (2..32) lattice of control points from edge to edge, each moved up to ``amplitude`` of the frame
    side (0..0.1) along each axis, smoothly interpolated between them; image and mask move together."""

    p: float = 0.25
    amplitude: float = 0.02
    grid: int = 4

    def __post_init__(self) -> None:
        _check_range("elastic.p", self.p, 0, 1)
        _check_range("elastic.amplitude", self.amplitude, 0, 0.1, " of the frame side")
        _check_whole("elastic.grid", self.grid, 2, 32)


@dataclass(frozen=True)
class OverlayAugment:
    """Burned-in graphics (``train.augment.overlay``): with probability ``p``, 1..``count`` (1..20) measurement
    ellipses, caliper crosses, dotted lines, text labels or translucent shapes, each up to ``max_size`` of the
    frame side (0.02..1), drawn over the image only (:mod:`pipeline.training.overlays`)."""

    p: float = 0.0
    count: int = 3
    max_size: float = 0.3

    def __post_init__(self) -> None:
        _check_range("overlay.p", self.p, 0, 1)
        _check_whole("overlay.count", self.count, 1, 20)
        _check_range("overlay.max_size", self.max_size, 0.02, 1, " of the frame side")


@dataclass(frozen=True)
class AugmentParams:
    """Random augmentation of the training frames (``train.augment``), applied in this order.

    Geometry, to image and mask together: flips, rotation and scale, then ``elastic``.
    Scanner look, to the image: ``speckle``, ``gain``, ``tgc``, ``dynamic_range``, ``gamma``,
    then contrast and brightness, then ``noise``. Then ``overlay``: graphics burned into the image.
    See :mod:`pipeline.training.augment`.

    Attributes:
        hflip, vflip: mirror left-right, upside down (probe at the other edge), each with
            probability 0.5.
        rotate_deg: rotation uniform in +-rotate_deg degrees (0..180).
        scale: zoom uniform in 1 +- scale (0..0.9).
        brightness: grey offset uniform in +-brightness x 255 (0..1).
        contrast: grey factor uniform in 1 +- contrast (0..0.9).
        display_range_db: the dynamic range the frames' grey levels 0-255 are taken to span,
            dB (10..120); converts ``gain`` and ``tgc`` dB into grey levels and is the range
            ``dynamic_range`` changes from.
        gain, tgc, dynamic_range, gamma, speckle, noise, elastic: the scanner-variety
            augmentations, each with its probability ``p`` (0 turns it off).
        overlay: burned-in graphics, off by default (``p`` 0).
    """

    hflip: bool = True
    vflip: bool = True
    rotate_deg: float = 10.0
    scale: float = 0.1
    brightness: float = 0.1
    contrast: float = 0.1
    display_range_db: float = 60.0
    gain: GainAugment = field(default_factory=GainAugment)
    tgc: TgcAugment = field(default_factory=TgcAugment)
    dynamic_range: DynamicRangeAugment = field(default_factory=DynamicRangeAugment)
    gamma: GammaAugment = field(default_factory=GammaAugment)
    speckle: SpeckleAugment = field(default_factory=SpeckleAugment)
    noise: NoiseAugment = field(default_factory=NoiseAugment)
    elastic: ElasticAugment = field(default_factory=ElasticAugment)
    overlay: OverlayAugment = field(default_factory=OverlayAugment)

    def __post_init__(self) -> None:
        for name in ("hflip", "vflip"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be true or false, got {getattr(self, name)!r}")
        _check_range("rotate_deg", self.rotate_deg, 0, 180, " degrees")
        _check_range("scale", self.scale, 0, 0.9)
        _check_range("brightness", self.brightness, 0, 1)
        _check_range("contrast", self.contrast, 0, 0.9)
        _check_range("display_range_db", self.display_range_db, 10, 120, " dB")
