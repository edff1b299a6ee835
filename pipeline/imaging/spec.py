"""The preprocessing specification: what turns an original frame into network input.

The same frozen objects are read from ``params.yaml`` by the pipeline and stored as
JSON in the ONNX model's metadata, so the app reproduces training input exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

CROP_MODES = ("auto", "box", "none")
RESIZE_MODES = ("letterbox", "stretch")
INTERPOLATIONS = ("area", "linear", "cubic", "lanczos")
FILTER_METHODS = ("none", "isotropic", "perona_malik")
CONDUCTANCES = ("exponential", "quadratic")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass(frozen=True)
class FilterSpec:
    """A diffusion filter applied to the resized 0-255 grey image.

    Attributes:
        method: ``none``, ``isotropic`` (heat equation, equal to a Gaussian of
            sigma = sqrt(2 * time) px) or ``perona_malik`` (anisotropic).
        time: isotropic diffusion time t in px^2 (>= 0).
        iterations: Perona-Malik explicit steps (>= 0).
        kappa: Perona-Malik edge threshold in grey levels of 0-255 data (> 0).
        gamma: Perona-Malik step size; the 4-neighbour scheme is stable for 0 < gamma <= 0.25.
        conductance: ``exponential`` (exp(-(g/kappa)^2), favours high-contrast edges) or
            ``quadratic`` (1 / (1 + (g/kappa)^2), favours wide regions).
    """

    method: str = "perona_malik"
    time: float = 2.0
    iterations: int = 10
    kappa: float = 30.0
    gamma: float = 0.2
    conductance: str = "exponential"

    def __post_init__(self) -> None:
        _require(self.method in FILTER_METHODS, f"filter.method must be one of {FILTER_METHODS}, got {self.method!r}")
        _require(self.time >= 0, f"filter.time must be >= 0, got {self.time}")
        _require(self.iterations >= 0, f"filter.iterations must be >= 0, got {self.iterations}")
        _require(self.kappa > 0, f"filter.kappa must be > 0, got {self.kappa}")
        _require(0 < self.gamma <= 0.25, f"filter.gamma must be in (0, 0.25], got {self.gamma}")
        _require(self.conductance in CONDUCTANCES, f"filter.conductance must be one of {CONDUCTANCES}")


@dataclass(frozen=True)
class PreprocessSpec:
    """Crop, resize and filter settings (the ``preprocess`` section of params.yaml).

    Attributes:
        crop: ``auto`` (bounding box of the ultrasound fan), ``box`` (``crop_box``) or ``none``.
        crop_box: (x, y, width, height) in original pixels, for ``crop: box``.
        size: side of the square network input, px.
        resize: ``letterbox`` (aspect ratio kept, zero padding centred) or ``stretch``.
        interpolation: image interpolation for the resize; masks always use nearest.
        filter: the diffusion filter applied after the resize.
    """

    crop: str = "auto"
    crop_box: tuple[int, int, int, int] | None = None
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
