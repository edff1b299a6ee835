"""Polygon rasterisation: which pixels an annotated outline covers.

Convention (pycocotools' too): pixel (row r, column c) is the unit square centred on the
point (x = c, y = r); vertices are x, y in px on that grid, so the image spans
-0.5 <= x < width - 0.5 and -0.5 <= y < height - 0.5.

Rule: a pixel belongs to a polygon when its centre lies inside it (the pixel-centre
rule), with a half-open tie-break for centres exactly on an edge, as scanline fillers
do: an edge counts for the rows min(y0, y1) <= r < max(y0, y1), and along a row a pixel
is filled when x_left <= c < x_right. So a rectangle with integer corners x0 < x1,
y0 < y1 covers exactly (x1 - x0) * (y1 - y0) pixels, and two polygons sharing an edge
never share a pixel. The mask's pixel count is the polygon's (shoelace) area up to what
the boundary row of pixels makes of it: no outward bias.

Ties need exact coordinates, so a coordinate within :data:`TIE_TOLERANCE_PX` of an integer
is taken as that integer. Roboflow writes integer vertices (boxes turned into polygons);
through a normalised format (YOLO: x / width written with 6 decimals) they come back up
to 0.00064 px off on a 1280 px frame, and would otherwise gain or lose a whole row or
column. COCO's 3-decimal coordinates (0.001 px apart) never move on frames up to 2048 px.

Several rings of one object are filled each on its own and joined by union, as
pycocotools fills the list of polygons of a COCO annotation: COCO polygons have no
holes, and a ring listed twice stays filled. Within one self-intersecting ring the
crossings along a row are paired even-odd (a pentagram's centre stays empty).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TIE_TOLERANCE_PX = 0.00075
"""Coordinates closer than this to an integer are snapped to it, px (< 0.001, COCO's precision)."""


def polygon_spans(rings: Sequence[np.ndarray], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixel runs each ring covers, row by row, inside an image of ``shape``.

    Args:
        rings: each (N, 2) x, y vertices in px (any float or int dtype), closed or not;
            a ring of fewer than 3 vertices covers nothing; a coordinate within
            :data:`TIE_TOLERANCE_PX` of an integer is taken as that integer.
        shape: (height, width) of the image, px.

    Returns:
        (rows, starts, ends): equal-length int64 arrays; run k covers the pixels
        ``starts[k] <= c < ends[k]`` of row ``rows[k]``, with 0 <= starts[k] < ends[k] <= width
        and 0 <= rows[k] < height. Runs of different rings may overlap.

    Raises:
        ValueError: a ring is not (N, 2) or holds a non-finite coordinate.
    """
    height, width = shape
    x0, y0, x1, y1, ring_of = _edges(rings)
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    first = np.clip(np.ceil(low), 0, height).astype(np.int64)  # rows r with low <= r < high
    stop = np.clip(np.ceil(high), 0, height).astype(np.int64)
    counts = np.maximum(stop - first, 0)
    edge = np.repeat(np.arange(len(counts)), counts)
    rows = first[edge] + np.arange(len(edge)) - np.repeat(np.cumsum(counts) - counts, counts)
    xs = x0[edge] + (rows - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    order = np.lexsort((xs, rows, ring_of[edge]))  # each (ring, row) holds an even number of crossings
    rows, xs = rows[order], xs[order]
    starts = np.clip(np.ceil(xs[0::2]), 0, width).astype(np.int64)
    ends = np.clip(np.ceil(xs[1::2]), 0, width).astype(np.int64)
    keep = starts < ends
    return rows[0::2][keep], starts[keep], ends[keep]


def rasterise_polygon(rings: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """The pixels whose centres lie inside any of the rings.

    Args:
        rings: each (N, 2) x, y vertices in px (see the module's convention), closed or not.
        shape: (height, width) of the mask, px.

    Returns:
        (height, width) bool mask: the union of the rings, each filled by the pixel-centre rule.

    Raises:
        ValueError: a ring is not (N, 2) or holds a non-finite coordinate.
    """
    mask = np.zeros(shape, bool)
    fill_rings(mask, rings)
    return mask


def fill_rings(canvas: np.ndarray, rings: Sequence[np.ndarray], value: int | bool = 1) -> None:
    """Sets the pixels of a 2-D canvas that the rings cover (their union) to ``value``, in place.

    Args:
        canvas: (height, width) array of any dtype; pixels outside the rings are left alone.
        rings: each (N, 2) x, y vertices in px (see the module's convention), closed or not.
        value: what covered pixels become.

    Raises:
        ValueError: a ring is not (N, 2) or holds a non-finite coordinate.
    """
    rows, starts, ends = polygon_spans(rings, canvas.shape)
    if len(rows) == 0:
        return
    r0, c0, c1 = int(rows.min()), int(starts.min()), int(ends.max())
    n_rows, n_cols = int(rows.max()) + 1 - r0, c1 - c0 + 1
    offset = (rows - r0) * n_cols - c0
    change = (np.bincount(offset + starts, minlength=n_rows * n_cols)
              - np.bincount(offset + ends, minlength=n_rows * n_cols))
    covered = np.cumsum(change.reshape(n_rows, n_cols), axis=1)[:, :-1] > 0
    canvas[r0:r0 + n_rows, c0:c1][covered] = value


def _edges(rings: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every edge of the rings of 3 or more vertices as float64 (x0, y0, x1, y1), near-integers snapped, and
    its ring's index."""
    parts, owners = [], []
    for index, ring in enumerate(rings):
        points = np.asarray(ring, np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"a ring must be (N, 2) x, y vertices, got shape {points.shape}")
        if not np.isfinite(points).all():
            raise ValueError(f"ring {index} holds a non-finite coordinate")
        if len(points) >= 3:
            whole = np.rint(points)
            points = np.where(np.abs(points - whole) < TIE_TOLERANCE_PX, whole, points)
            parts.append(np.hstack([points, np.roll(points, -1, axis=0)]))
            owners.append(np.full(len(points), index, np.int64))
    if not parts:
        return *np.zeros((4, 0)), np.zeros(0, np.int64)
    edges = np.vstack(parts)
    return edges[:, 0], edges[:, 1], edges[:, 2], edges[:, 3], np.concatenate(owners)
