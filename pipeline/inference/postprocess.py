"""Post-processing of thresholded masks: the organ's largest component, its holes filled, lesions kept inside it.

The one implementation (numpy + OpenCV, no torch), applied by validation during training,
by the evaluate stage, and through :meth:`pipeline.inference.predictor.Segmentation.masks`
by ``trus segment`` and the app. What it does is set by a
:class:`~pipeline.inference.contract.PostprocessSpec` (``inference.postprocess`` in
params.yaml, stored in the model's contract).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.inference.contract import PostprocessSpec


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a mask.

    Args:
        mask: (H, W) bool.

    Returns:
        (H, W) bool, the component with the most pixels (of equal ones, the first met in
        raster order); an empty mask stays empty.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:  # background alone, or one component
        return mask.astype(bool, copy=True)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == biggest


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """A mask with its holes filled.

    A hole is background that no 4-connected path of background joins to the frame's
    border (4-connected background is the complement of 8-connected foreground).

    Args:
        mask: (H, W) bool.

    Returns:
        (H, W) bool, ``mask`` plus its holes.
    """
    padded = np.pad(mask.astype(np.uint8), 1)
    flood_mask = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, flood_mask, (0, 0), 2, flags=4)  # the padding joins every border pixel
    return (padded != 2)[1:-1, 1:-1]


def postprocess_masks(masks: np.ndarray, classes: Sequence[str], spec: PostprocessSpec) -> np.ndarray:
    """Applies ``spec`` to one frame's thresholded masks.

    In order: the organ keeps its largest component (``largest_component``), then its holes
    are filled (``fill_holes``); then each ``inside_organ`` class keeps only its pixels
    inside that cleaned organ (pixel by pixel: a lesion half outside keeps its inside half).

    Args:
        masks: (C, H, W) bool, channel c for ``classes[c]``.
        classes: the C class names.
        spec: what to do; an inactive spec returns the masks unchanged.

    Returns:
        (C, H, W) bool, a new array; classes the spec does not name are copied unchanged.

    Raises:
        ValueError: ``masks`` is not (C, H, W) with C = len(classes), or the spec names a
            class not in ``classes``.
    """
    if masks.ndim != 3 or masks.shape[0] != len(classes):
        raise ValueError(f"masks must be (C, H, W) with C = {len(classes)} classes, got shape {masks.shape}")
    unknown = spec.unknown_classes(tuple(classes))
    if unknown:
        raise ValueError(f"post-processing names {', '.join(map(repr, unknown))}, not in the classes {list(classes)}")
    result = masks.astype(bool, copy=True)
    if not spec.active:
        return result
    organ = list(classes).index(spec.organ)
    if spec.largest_component:
        result[organ] = largest_component(result[organ])
    if spec.fill_holes:
        result[organ] = fill_holes(result[organ])
    for name in spec.inside_organ:
        channel = list(classes).index(name)
        result[channel] &= result[organ]
    return result
