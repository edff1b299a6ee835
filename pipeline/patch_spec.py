"""The training window's parameters (``train.patch`` in params.yaml), typed and checked.

Read by :mod:`pipeline.config` as part of ``TrainParams``; used by
:mod:`pipeline.training.patches`, whose docstring says how the window is drawn. A bad value
raises ValueError naming the key under ``train`` (``patch.size``), which
:func:`pipeline.config.build` turns into a ParamsError naming the file.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass


@dataclass(frozen=True)
class PatchParams:
    """``train.patch``: the training window.

    Attributes:
        size: window side in px, a multiple of 32 (the networks' stride), or None (whole frames).
            The training data refuses one larger than the frames (``preprocess.size``).
        foreground: probability in [0, 1] that the window is centred on a labelled pixel.
        plane_frames: with a plane head, how many frames of each step's batch (per process,
            the first ones) the head also sees whole, an integer >= 0; 0: the head learns
            from the windows (:class:`pipeline.training.plane_head.WholeFramePlane`).
    """

    size: int | None = None
    foreground: float = 0.5
    plane_frames: int = 0

    def __post_init__(self) -> None:
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int)
                                      or self.size < 32 or self.size % 32):
            raise ValueError(f"patch.size must be null or a multiple of 32 px >= 32, got {self.size!r}")
        is_number = isinstance(self.foreground, numbers.Real) and not isinstance(self.foreground, bool)
        if not is_number or not 0 <= self.foreground <= 1:
            raise ValueError(f"patch.foreground must be a probability in [0, 1], got {self.foreground!r}")
        if isinstance(self.plane_frames, bool) or not isinstance(self.plane_frames, int) or self.plane_frames < 0:
            raise ValueError(f"patch.plane_frames must be an integer >= 0, got {self.plane_frames!r}")
