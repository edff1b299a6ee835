"""Post-processing of thresholded masks: the organ's largest component, opened, its holes filled, dropped when
too small to be one, lesions kept inside it and without pieces too small to be one.

The one implementation (numpy + OpenCV, no torch), applied by validation during training,
by the evaluate stage, and through :meth:`pipeline.inference.predictor.Segmentation.masks`
by ``trus segment`` and the app. What it does is set by a
:class:`~pipeline.inference.contract.PostprocessSpec` (``inference.postprocess`` in
params.yaml, stored in the model's contract).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.imaging.components import box_components
from pipeline.inference.contract import PostprocessSpec


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a mask.

    Labelled on the mask's bounding box (:func:`pipeline.imaging.components.box_components`),
    numbered as on the whole frame.

    Args:
        mask: (H, W) bool.

    Returns:
        (H, W) bool, the component with the most pixels (of equal ones, the first OpenCV
        labels: the first met in the raster order of 2x2 blocks); an empty mask stays empty.
    """
    found = box_components(mask)
    if found.count <= 2:  # background alone, or one component
        return mask.astype(bool, copy=True)
    return found.component(1 + int(np.argmax(found.stats[1:, cv2.CC_STAT_AREA])))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """A mask with its holes filled.

    A hole is background that no 4-connected path of background joins to the frame's
    border (4-connected background is the complement of 8-connected foreground).

    Args:
        mask: (H, W) bool.

    Returns:
        (H, W) bool, ``mask`` plus its holes.
    """
    mask = np.asarray(mask, bool)
    filled = mask.copy()
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0:
        return filled
    # the work is on the mask's box: background outside it reaches the border, and the padding joins it to the box
    box = (slice(y, y + h), slice(x, x + w))
    padded = np.pad(mask[box].view(np.uint8), 1)
    flood_mask = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, flood_mask, (0, 0), 2, flags=4)  # the padding joins every border pixel of the box
    filled[box] = padded[1:-1, 1:-1] != 2
    return filled


def open_organ(mask: np.ndarray, fraction: float) -> np.ndarray:
    """A morphological opening of an organ mask by a disk sized to the organ.

    The disk's radius is ``fraction`` x the equivalent diameter sqrt(4 A / pi) of the mask's
    A px, rounded to whole px: the same shape at another resolution is opened alike. It
    removes every part the disk cannot cover from inside the mask: a neck narrower than the
    disk, so that a knob beyond it comes apart (and :func:`postprocess_masks` keeps the
    largest piece), and a knob too small to hold the disk. That is the demo model's gland
    reaching into the tissue above the bladder on sagittal frames. It keeps an outline whose
    curvature radius is everywhere larger than the disk's, as a gland's section is (an
    ellipse of axis ratio 2 keeps more than 99.9% of its pixels at 0.15). A gland with a
    narrow protrusion of its own (a median lobe reaching into the bladder) loses it: the
    README says how to switch the opening off. Euclidean, through two distance transforms.

    Args:
        mask: (H, W) bool.
        fraction: the radius over the equivalent diameter, >= 0; 0 returns the mask.

    Returns:
        (H, W) bool, a new array; the mask unchanged when it is empty, when the radius
        rounds to 0 px, or when the opening would remove all of it.
    """
    mask = np.asarray(mask, bool)
    radius = round(fraction * math.sqrt(4.0 * np.count_nonzero(mask) / math.pi))
    if radius < 1:
        return mask.copy()
    rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    box = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))  # the work is on the organ's box
    # a 1-px background border (beyond the frame too: an organ cut by the edge ends there) holds the nearest
    # background pixel of every pixel of the box that is not already in it; the distances are exact
    padded = np.pad(mask[box].view(np.uint8), 1)
    eroded = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1] > radius
    if not eroded.any():
        return mask.copy()
    # the eroded organ lies inside the box, so the box holds the nearest eroded pixel of each of its pixels
    outside = cv2.distanceTransform((~eroded).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    opened = np.zeros_like(mask)
    opened[box] = (outside <= radius) & mask[box]
    return opened


def drop_small_pieces(mask: np.ndarray, min_area: float) -> np.ndarray:
    """A mask without its 8-connected pieces of fewer than ``min_area`` px.

    Used on a lesion's mask with ``min_area`` a fraction (``min_piece``) of the cleaned gland's
    area, so the same shape at another resolution or depth loses the same pieces. A piece of
    a few pixels is speckle, not a finding: a lesion a clinician reports on TRUS is
    millimetres across, and the smallest a TRUS image resolves is about 1 to 2 mm (axial
    resolution about 0.3 to 0.5 mm at 6 to 9 MHz, speckle of about 1 mm).

    Args:
        mask: (H, W) bool.
        min_area: px, >= 0; 0 returns the mask.

    Returns:
        (H, W) bool, a new array.
    """
    mask = np.asarray(mask, bool)
    found = box_components(mask)
    small = [label for label in range(1, found.count) if found.stats[label, cv2.CC_STAT_AREA] < min_area]
    if not small:
        return mask.copy()
    kept = mask.copy()
    kept[found.box] &= ~np.isin(found.labels, small)
    return kept


def postprocess_masks(masks: np.ndarray, classes: Sequence[str], spec: PostprocessSpec,
                      field_px: float | None = None) -> np.ndarray:
    """Applies ``spec`` to one frame's thresholded masks.

    In order: the organ keeps its largest component (``largest_component``), is opened
    (``opening``, :func:`open_organ`; then the largest component again, when that is on, as
    the opening can cut it in pieces), then its holes are filled (``fill_holes``); then it is
    removed when it covers fewer than ``min_organ`` x ``field_px`` pixels; then each
    ``inside_organ`` class keeps only its pixels inside that cleaned organ (pixel by pixel: a
    lesion half outside keeps its inside half), then loses its pieces smaller than
    ``min_piece`` x the cleaned organ's area (:func:`drop_small_pieces`).

    Args:
        masks: (C, H, W) bool, channel c for ``classes[c]``.
        classes: the C class names.
        spec: what to do; an inactive spec returns the masks unchanged.
        field_px: the area, in the masks' pixels, of the network's square input: H x W when
            the masks are on the network's grid (None, the default); at the original frame's
            size, that square mapped back (:attr:`pipeline.imaging.geometry.FrameGeometry.input_area_px`).
            ``min_organ`` is a fraction of it, so a frame loses the same organ at any size.

    Returns:
        (C, H, W) bool, a new array; classes the spec does not name are copied unchanged.

    Raises:
        ValueError: ``masks`` is not (C, H, W) with C = len(classes), the spec names a
            class not in ``classes``, or ``field_px`` is not a positive number.
    """
    if masks.ndim != 3 or masks.shape[0] != len(classes):
        raise ValueError(f"masks must be (C, H, W) with C = {len(classes)} classes, got shape {masks.shape}")
    unknown = spec.unknown_classes(tuple(classes))
    if unknown:
        raise ValueError(f"post-processing names {', '.join(map(repr, unknown))}, not in the classes {list(classes)}")
    if field_px is None:
        field_px = float(masks.shape[1] * masks.shape[2])
    if not math.isfinite(field_px) or field_px <= 0:
        raise ValueError(f"field_px must be a positive number of pixels, got {field_px!r}")
    result = masks.astype(bool, copy=True)
    if not spec.active:
        return result
    organ = list(classes).index(spec.organ)
    if spec.largest_component:
        result[organ] = largest_component(result[organ])
    if spec.opening > 0:
        result[organ] = open_organ(result[organ], spec.opening)
        if spec.largest_component:
            result[organ] = largest_component(result[organ])
    if spec.fill_holes:
        result[organ] = fill_holes(result[organ])
    if np.count_nonzero(result[organ]) < spec.min_organ * field_px:
        result[organ] = False
    min_area = spec.min_piece * np.count_nonzero(result[organ])
    for name in spec.inside_organ:
        channel = list(classes).index(name)
        result[channel] &= result[organ]
        if min_area > 0:
            result[channel] = drop_small_pieces(result[channel], min_area)
    return result
