"""Test-time flips (``inference.flips``): the network's probabilities averaged over mirror images of the frame.

The network runs on the frame and on its mirror images; each output is mirrored back onto
the frame and the probabilities are averaged, pixel by pixel (nnU-Net's test-time mirroring).
A network trained with flips (``train.augment.hflip``, ``vflip``) should give a mirrored
frame the mirrored answer; where it does not, the answer rests on something a mirror
changes, and the average lowers it. It costs one network pass per mirror image.

Choices, as axes of (..., H, W) arrays:

- ``none``: the frame alone (1 pass);
- ``horizontal``: and its left-right mirror (2 passes);
- ``vertical``: and its upside-down mirror, the probe at the other edge (2 passes);
- ``both``: the frame, both mirrors and the frame turned half a turn (4 passes).

This module is NumPy only (the app and the service have no torch); the training side uses
:func:`flip_axes` with torch (:func:`pipeline.training.predict.mirrored_outputs`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

FLIPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "none": ((),),
    "horizontal": ((), (-1,)),
    "vertical": ((), (-2,)),
    "both": ((), (-1,), (-2,), (-2, -1)),
}
"""Each choice's mirrorings: the axes of an (..., H, W) array to reverse (() is the frame itself)."""

Outputs = tuple[np.ndarray, np.ndarray | None]
"""A network's outputs: (N, C, H, W) class probabilities and (N, K) plane probabilities or None."""


def check_flips(value: object, name: str = "flips") -> str:
    """``value`` if it is one of :data:`FLIPS`' choices.

    Raises:
        ValueError: anything else (the message names ``name`` and the choices).
    """
    if not isinstance(value, str) or value not in FLIPS:
        raise ValueError(f"{name} must be one of {', '.join(FLIPS)}, got {value!r}")
    return value


def flip_axes(flips: str) -> tuple[tuple[int, ...], ...]:
    """The mirrorings of ``flips`` (:data:`FLIPS`), the identity first.

    Raises:
        ValueError: not a choice of :data:`FLIPS`.
    """
    return FLIPS[check_flips(flips)]


def mirrored_mean(run: Callable[[np.ndarray], Outputs], images: np.ndarray, flips: str) -> Outputs:
    """The outputs of ``run`` averaged over the mirror images of ``flips``.

    Args:
        run: the network: (N, H, W) uint8 frames -> (N, C, H, W) float32 probabilities in
            [0, 1] and (N, K) float32 plane probabilities (rows sum to 1) or None.
        images: (N, H, W) uint8 preprocessed frames.
        flips: a choice of :data:`FLIPS`; ``none`` calls ``run`` once, on ``images`` as given.

    Returns:
        (N, C, H, W) float32 class probabilities, each pass mirrored back before the mean,
        and the (N, K) float32 mean of the plane probabilities (None when ``run`` gives none;
        a frame's plane does not change in a mirror).
    """
    axes_list = flip_axes(flips)
    if len(axes_list) == 1:
        return run(images)
    probabilities, planes = None, None
    for axes in axes_list:
        mirrored = np.ascontiguousarray(np.flip(images, axes)) if axes else images
        pass_probabilities, pass_planes = run(mirrored)
        pass_probabilities = np.flip(pass_probabilities, axes) if axes else pass_probabilities
        probabilities = pass_probabilities.astype(np.float32) if probabilities is None \
            else probabilities + pass_probabilities
        if pass_planes is not None:
            planes = pass_planes.astype(np.float32) if planes is None else planes + pass_planes
    count = np.float32(len(axes_list))
    return probabilities / count, None if planes is None else planes / count
