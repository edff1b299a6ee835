"""Training on patches: a square window of each (augmented) frame, often centred on a structure.

Small structures (a lesion is about 1% of a frame) give the loss little to learn from when
every step sees whole frames. As in nnU-Net, training can instead see a ``size`` x ``size``
window of each frame, centred on a pixel of a class present in the frame with probability
``foreground`` (the class drawn uniformly among those present, so the rare lesion is as
likely as the gland) and placed uniformly otherwise. The network is fully convolutional:
validation, evaluation and inference still see whole frames. A step costs about
(size / S)^2 of a whole frame's, so the same time buys more, and more varied, steps.

``train.patch`` in params.yaml; ``size: null`` trains on whole frames (the default).
"""

from __future__ import annotations

import numpy as np

from pipeline.patch_spec import PatchParams


def patch_origin(mask: np.ndarray, size: int, foreground: float, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of a ``size`` x ``size`` window inside the frame.

    Args:
        mask: (S, S) uint8 bitmask (bit c = class c), S >= size.
        size: window side, px.
        foreground: probability of centring the window on a pixel of a class the frame holds
            (the class uniform among those present, the pixel uniform within it); a frame with
            no labelled pixel always gets a uniform window.
        rng: random source (one draw sequence per frame and epoch).

    Returns:
        (row, column) of the window's top-left pixel, both in [0, S - size]; the window is
        clipped to the frame, so a centre near the edge gives an off-centre window.
    """
    height, width = mask.shape
    if size > min(height, width):
        raise ValueError(f"a {size} px window does not fit a {width}x{height} frame")
    top_limit, left_limit = height - size, width - size
    wants_foreground = rng.random() < foreground
    bits = [bit for bit in range(8) if np.any(mask & (1 << bit))]
    if wants_foreground and bits:
        rows, columns = np.nonzero(mask & (1 << bits[int(rng.integers(len(bits)))]))
        pick = int(rng.integers(len(rows)))
        top, left = int(rows[pick]) - size // 2, int(columns[pick]) - size // 2
        return min(max(top, 0), top_limit), min(max(left, 0), left_limit)
    return int(rng.integers(top_limit + 1)), int(rng.integers(left_limit + 1))


__all__ = ["PatchParams", "patch_origin"]
