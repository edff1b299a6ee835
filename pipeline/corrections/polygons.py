"""Masks to COCO polygons that this project's own ingest turns back into the same masks.

Convention (:mod:`pipeline.imaging.polygons`): pixel (row r, column c) is the unit square
centred on (x = c, y = r); a pixel is filled when its centre lies inside a polygon.

How the ingest reads a COCO annotation's ``segmentation`` (``rasterise_shapes`` in
:mod:`pipeline.ingest.records`): every ring of every annotation of a class is filled on its
own and the results are joined (union, as pycocotools does), so a hole can never be a
separate ring: it would be filled, not cut out. Within *one* ring, though, the crossings of
each pixel row are paired even-odd. So a part with holes is written as one **keyhole ring**:
the outline, then for each hole a bridge to it, the hole, and the same bridge back. The two
copies of a bridge cross every row at the same x and cancel (even-odd), so the ring covers
exactly the outline minus its holes; the outline and its holes run in opposite directions,
so a non-zero-winding filler (Roboflow's editor, pycocotools' drawing) sees the same region.
Each part (8-connected component of the mask) becomes its own annotation; an island inside
a hole is a part of its own.

Where the vertices lie: the outlines are traced on the mask upsampled 2x (OpenCV
``findContours``), through the centres of the boundary sub-pixels, so every vertex sits
0.25 px inside the pixel edges of the part (x = c - 0.25 or c + 0.25; exact in 3 COCO
decimals and in float32). No pixel centre is ever on or near an edge, walls one pixel
thin keep their two sides 0.5 px apart, and the pixel-centre rule fills exactly the mask
back: the round trip is exact. ``tolerance_px`` then drops vertices (Douglas-Peucker on the
traced outline) that lie within that distance of the simplified outline: below the 0.25 px
clearance (the default, :data:`DEFAULT_TOLERANCE_PX`) no pixel changes, and a large gland
outline keeps about 2/3 of its vertices; larger tolerances give fewer vertices, and pixels
along the boundary may flip (0.5 px: IoU ~0.9995 on a gland-sized ellipse).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DEFAULT_TOLERANCE_PX = 0.24
"""Default vertex simplification, px: below the 0.25 px clearance between the traced outline and every
pixel centre, so it drops only vertices that change no pixel (the round trip stays exact; the tests check it)."""


@dataclass(frozen=True)
class MaskPart:
    """One 8-connected part of a mask, outlined.

    Attributes:
        outline: (N, 2) float64 x, y px, N >= 3, the outer boundary (negative shoelace area in
            x-right/y-down image coordinates, i.e. counter-clockwise as seen on screen).
        holes: each (M, 2) float64 x, y px, M >= 3, running the other way round.
        pixels: the part's area, px (its pixel count; holes excluded).
        box: (x, y, width, height) px: the pixel squares the part covers, in the project's
            pixel-centre convention (pixel c spans c - 0.5 .. c + 0.5).
    """

    outline: np.ndarray
    holes: tuple[np.ndarray, ...]
    pixels: int
    box: tuple[float, float, float, float]


def mask_parts(mask: np.ndarray, tolerance_px: float = DEFAULT_TOLERANCE_PX) -> list[MaskPart]:
    """The parts of a 2-D mask, each with its outline and holes, in a stable order (top to bottom).

    Args:
        mask: (H, W) bool (or 0/1 integer) mask in the frame's pixel grid.
        tolerance_px: Douglas-Peucker tolerance, px; 0 gives the exact outline.

    Returns:
        One :class:`MaskPart` per 8-connected component; none for an empty mask.

    Raises:
        ValueError: ``mask`` is not 2-D, or ``tolerance_px`` is negative or not finite.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D (height, width), got shape {mask.shape}")
    if not (np.isfinite(tolerance_px) and tolerance_px >= 0):
        raise ValueError(f"tolerance_px must be a finite number >= 0, got {tolerance_px}")
    binary = (mask != 0).astype(np.uint8)
    if not binary.any():
        return []
    _, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    doubled = np.repeat(np.repeat(binary, 2, axis=0), 2, axis=1)
    contours, hierarchy = cv2.findContours(doubled, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    links = hierarchy[0]
    parts = []
    for index, contour in enumerate(contours):
        if links[index][3] != -1:
            continue  # a hole: taken with its outline
        u, v = contour[0, 0]
        label = int(labels[v // 2, u // 2])
        holes, child = [], int(links[index][2])
        while child != -1:
            holes.append(_oriented(_ring(contours[child], tolerance_px), hole=True))
            child = int(links[child][0])
        x, y, width, height, area = (int(value) for value in stats[label])
        parts.append(MaskPart(_oriented(_ring(contour, tolerance_px), hole=False), tuple(holes), area,
                              (x - 0.5, y - 0.5, float(width), float(height))))
    parts.sort(key=lambda part: (part.box[1], part.box[0]))
    return parts


def keyhole_ring(part: MaskPart) -> np.ndarray:
    """The part as one ring: its outline with each hole spliced in through a doubled bridge.

    Each hole is joined at its vertex nearest to the outline (and that outline vertex); the
    bridge is walked there and back, so it covers nothing (see the module docstring).

    Returns:
        (K, 2) float64 x, y px, not closed (first vertex not repeated).
    """
    if not part.holes:
        return part.outline
    joins: dict[int, list[np.ndarray]] = {}
    for hole in part.holes:
        distance = np.linalg.norm(part.outline[:, None, :] - hole[None, :, :], axis=2)
        at_outline, at_hole = np.unravel_index(int(np.argmin(distance)), distance.shape)
        spliced = np.vstack([np.roll(hole, -int(at_hole), axis=0), hole[at_hole:at_hole + 1],
                             part.outline[at_outline:at_outline + 1]])
        joins.setdefault(int(at_outline), []).append(spliced)
    pieces = []
    for index, vertex in enumerate(part.outline):
        pieces.append(vertex[None, :])
        pieces += joins.get(index, [])
    return np.vstack(pieces)


def mask_to_rings(mask: np.ndarray, tolerance_px: float = DEFAULT_TOLERANCE_PX) -> list[np.ndarray]:
    """One keyhole ring per part of the mask (none for an empty mask); see :func:`keyhole_ring`.

    Filled together by :func:`pipeline.imaging.polygons.rasterise_polygon` they give ``mask``
    back exactly when ``tolerance_px`` is 0.
    """
    return [keyhole_ring(part) for part in mask_parts(mask, tolerance_px)]


def _ring(contour: np.ndarray, tolerance_px: float) -> np.ndarray:
    """An OpenCV contour of the 2x mask as (N, 2) float64 x, y px in the original grid (sub-pixel u -> (u - 0.5) / 2)."""
    points = contour.reshape(-1, 2)
    if tolerance_px > 0 and len(points) > 3:
        simplified = cv2.approxPolyDP(contour, 2 * tolerance_px, closed=True).reshape(-1, 2)
        points = simplified if len(simplified) >= 3 else points
    if len(points) < 3:  # one sub-pixel wide or a single point: cannot happen on a 2x mask, kept as a guard
        raise AssertionError(f"degenerate contour of {len(points)} point(s)")
    return (points.astype(np.float64) - 0.5) / 2


def _oriented(ring: np.ndarray, hole: bool) -> np.ndarray:
    """``ring`` running the outline's way round (negative shoelace area, y down) or, for a hole, the other way."""
    x, y = ring[:, 0], ring[:, 1]
    signed = float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
    return ring[::-1].copy() if (signed > 0) != hole else ring
