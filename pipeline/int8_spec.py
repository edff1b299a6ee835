"""The INT8 model's parameters (``export.int8`` in params.yaml), typed and checked.

Read by :mod:`pipeline.config` as part of ``ExportParams``; used by the export stage
(:mod:`pipeline.training.int8_export`). A bad value raises ValueError naming the key under
``export`` (``int8.calibration``), which :func:`pipeline.config.build` turns into a ParamsError
naming the file.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
"""ONNX Runtime's MinMax, Percentile (99.999th) and Entropy calibrations."""
WEIGHT_BITS = (7, 8)
"""7: weights in [-64, 64], exact on every x86 CPU with AVX2 (ONNX Runtime's ``reduce_range``); 8: in
[-127, 127], exact only where the CPU has integer dot-product instructions (README "INT8 on CPUs without VNNI")."""


def _fraction(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0.0 <= float(value) <= 1.0


@dataclass(frozen=True)
class Int8Params:
    """``export.int8``: the statically quantised model and its accuracy gate.

    Attributes:
        enabled: write ``models/int8/model.int8.onnx`` at all.
        calibration: the activation-range calibration, one of :data:`CALIBRATION_METHODS`
            (README "INT8": chosen by measurement).
        calibration_frames: training frames the ranges are calibrated on (spread evenly
            over the training subset; never validation or test frames), >= 1.
        weight_bits: one of :data:`WEIGHT_BITS`. Without VNNI, ONNX Runtime's x86 kernels add
            pairs of 8-bit products in 16 bits, which 8-bit weights can overflow; 7-bit weights
            cannot, so the model gives the masks its gate measured on every CPU.
        min_mask_dice: in [0, 1]: per class, the Dice between the INT8 and the fp32 masks on
            the test frames must be at least this.
        max_metric_drop: in [0, 1]: each reported test Dice, IoU (and the plane accuracy)
            may drop by at most this.
    """

    enabled: bool = True
    calibration: str = "percentile"
    calibration_frames: int = 16
    weight_bits: int = 7
    min_mask_dice: float = 0.99
    max_metric_drop: float = 0.01

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"int8.enabled must be true or false, got {self.enabled!r}")
        if self.calibration not in CALIBRATION_METHODS:
            raise ValueError(f"int8.calibration must be one of {', '.join(CALIBRATION_METHODS)}, "
                             f"got {self.calibration!r}")
        frames = self.calibration_frames
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise ValueError(f"int8.calibration_frames must be an integer >= 1, got {frames!r}")
        if isinstance(self.weight_bits, bool) or self.weight_bits not in WEIGHT_BITS:
            raise ValueError(f"int8.weight_bits must be 7 or 8, got {self.weight_bits!r}")
        for name in ("min_mask_dice", "max_metric_drop"):
            if not _fraction(getattr(self, name)):
                raise ValueError(f"int8.{name} must be a number in [0, 1], got {getattr(self, name)!r}")
