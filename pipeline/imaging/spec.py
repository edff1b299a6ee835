"""The preprocessing specification: what turns an original frame into network input.

The same frozen objects are read from ``params.yaml`` by the pipeline and stored as
JSON in the ONNX model's metadata, so the app reproduces training input exactly.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

CROP_MODES = ("auto", "box", "dicom", "none")
RESIZE_MODES = ("letterbox", "stretch")
INTERPOLATIONS = ("area", "linear", "cubic", "lanczos")
FILTER_METHODS = ("none", "isotropic", "perona_malik", "srad")
CONDUCTANCES = ("exponential", "quadratic")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass(frozen=True)
class FilterSpec:
    """A diffusion filter applied to the resized 0-255 grey image (``preprocess.filter``).

    Units: grey levels of 0-255 data; diffusion time in px^2 on the unit pixel grid.
    Every field has a default (older ONNX metadata without the SRAD fields still loads),
    and each method reads only its own fields.

    Attributes:
        method: ``none``, ``isotropic`` (heat equation), ``perona_malik`` (anisotropic,
            gradient-stopped) or ``srad`` (speckle-reducing anisotropic diffusion).
        time: isotropic diffusion time t, px^2, in [0, 200]; equal to a Gaussian of
            sigma = sqrt(2 t) px (t = 2 -> sigma = 2 px).
        iterations: Perona-Malik explicit steps, 0..500 (total time = iterations * gamma px^2).
        kappa: Perona-Malik edge threshold, grey levels, in (0, 255]; neighbour differences
            well above kappa barely diffuse.
        gamma: Perona-Malik time step, px^2, in (0, 0.25]; the explicit 4-neighbour scheme
            is stable and creates no new extrema for gamma <= 1/4.
        conductance: Perona-Malik ``exponential`` exp(-(d/kappa)^2) (favours high-contrast
            edges) or ``quadratic`` 1 / (1 + (d/kappa)^2) (favours wide regions).
        srad_iterations: SRAD explicit steps, 0..500 (total time = srad_iterations * srad_step px^2).
        srad_step: SRAD time step, px^2, in (0, 0.25] (Yu & Acton's Delta t / 4); with the
            diffusion coefficient clamped to [0, 1] the scheme is stable and creates no new
            extrema for steps <= 1/4.
        srad_window: side of the square windows, px, in 3..64, whose local coefficient of
            variation gives the speckle scale q0(t): the median over the content windows,
            re-estimated at every step (Aja-Fernandez & Alberola-Lopez 2006).
        srad_dynamic_range_db: the display dynamic range, dB, that log-compressed the
            envelope onto 0-255, in [10, 120]; SRAD runs on the decompressed envelope
            10^(g * dr / (20 * 255)) where speckle is multiplicative. 0 runs it on the
            grey levels themselves (plus 1, so black is not 0).
    """

    method: str = "perona_malik"
    time: float = 2.0
    iterations: int = 10
    kappa: float = 30.0
    gamma: float = 0.2
    conductance: str = "exponential"
    srad_iterations: int = 15
    srad_step: float = 0.2
    srad_window: int = 7
    srad_dynamic_range_db: float = 60.0

    def __post_init__(self) -> None:
        _require(self.method in FILTER_METHODS, f"filter.method must be one of {FILTER_METHODS}, got {self.method!r}")
        _require(self.conductance in CONDUCTANCES,
                 f"filter.conductance must be one of {CONDUCTANCES}, got {self.conductance!r}")
        _check_number("time", self.time, 0.0, 200.0)
        _check_int("iterations", self.iterations, 0, 500)
        _check_number("kappa", self.kappa, 0.0, 255.0, low_open=True)
        _check_number("gamma", self.gamma, 0.0, 0.25, low_open=True)
        _check_int("srad_iterations", self.srad_iterations, 0, 500)
        _check_number("srad_step", self.srad_step, 0.0, 0.25, low_open=True)
        _check_int("srad_window", self.srad_window, 3, 64)
        _check_number("srad_dynamic_range_db", self.srad_dynamic_range_db, 0.0, 120.0)
        _require(self.srad_dynamic_range_db == 0 or self.srad_dynamic_range_db >= 10,
                 f"filter.srad_dynamic_range_db must be 0 or in [10, 120], got {self.srad_dynamic_range_db}")


def _check_number(key: str, value: object, low: float, high: float, low_open: bool = False) -> None:
    """Raises ValueError naming ``filter.<key>`` unless ``value`` is a real number in the range."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > low if low_open else value >= low) and value <= high
    _require(ok, f"filter.{key} must be a number in {interval}, got {value!r}")


def _check_int(key: str, value: object, low: int, high: int) -> None:
    """Raises ValueError naming ``filter.<key>`` unless ``value`` is an integer in low..high."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= value <= high
    _require(ok, f"filter.{key} must be an integer in {low}..{high}, got {value!r}")


@dataclass(frozen=True)
class PreprocessSpec:
    """Crop, resize and filter settings (the ``preprocess`` section of params.yaml).

    Attributes:
        crop: ``auto`` (bounding box of the ultrasound fan found in the pixels, ignoring
            burned-in text, overlays, calipers, logos and the depth scale), ``box`` (the
            fixed ``crop_box`` of one scanner model), ``dicom`` (the frame's DICOM ultrasound
            region, clipped to the image; frames without one - PNG/JPEG, or DICOM without a
            Sequence of Ultrasound Regions - fall back to ``auto``) or ``none`` (whole frame).
        crop_box: (x, y, width, height) in original pixels, for ``crop: box``.
        zero_outside_fan: set pixels outside the detected fan mask to 0 before cropping,
            whatever the crop mode (removes overlays in the margins; a frame where no fan is
            found keeps all its pixels).
        size: side of the square network input, px.
        resize: ``letterbox`` (aspect ratio kept, zero padding centred) or ``stretch``.
        interpolation: image interpolation for the resize; masks always use nearest.
        filter: the diffusion filter applied after the resize.
    """

    crop: str = "auto"
    crop_box: tuple[int, int, int, int] | None = None
    zero_outside_fan: bool = False
    size: int = 768
    resize: str = "letterbox"
    interpolation: str = "area"
    filter: FilterSpec = field(default_factory=FilterSpec)

    def __post_init__(self) -> None:
        _require(self.crop in CROP_MODES, f"preprocess.crop must be one of {CROP_MODES}, got {self.crop!r}")
        if self.crop == "box":
            box = self.crop_box
            _require(box is not None and len(box) == 4 and box[2] > 0 and box[3] > 0,
                     "preprocess.crop_box must be [x, y, width, height] with positive size for crop: box")
        _require(isinstance(self.zero_outside_fan, bool),
                 f"preprocess.zero_outside_fan must be true or false, got {self.zero_outside_fan!r}")
        _require(16 <= self.size <= 4096, f"preprocess.size must be in 16..4096, got {self.size}")
        _require(self.resize in RESIZE_MODES, f"preprocess.resize must be one of {RESIZE_MODES}")
        _require(self.interpolation in INTERPOLATIONS, f"preprocess.interpolation must be one of {INTERPOLATIONS}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, the form stored in the ONNX metadata."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PreprocessSpec:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: unknown keys or invalid values.
        """
        values = dict(values)
        filter_spec = FilterSpec(**values.pop("filter", {}))
        box = values.pop("crop_box", None)
        return cls(**values, crop_box=tuple(box) if box is not None else None, filter=filter_spec)
