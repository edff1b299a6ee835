"""The ground truth as the export writes it: outlines at 3 decimals, and lesions fitted inside glands.

The masks are the outlines rasterised by the readers' own rule
(:func:`pipeline.imaging.polygons.rasterise_polygon`), so reading the export back gives the
generator's masks exactly.
"""

from __future__ import annotations

import numpy as np

from pipeline.imaging.polygons import rasterise_polygon

EXPORT_DECIMALS = 3  # Roboflow writes polygon coordinates with 3 decimals


def export_precision(outline: np.ndarray) -> np.ndarray:
    """An outline as the export writes it and the readers hold it.

    Args:
        outline: (N, 2) x, y px.

    Returns:
        (N, 2) float32: each coordinate rounded to :data:`EXPORT_DECIMALS` decimals (Python's
        ``round``, as the COCO writer rounds), then float32, as the COCO reader converts the
        JSON numbers; written and read back, it is the same array bit for bit.
    """
    values = [round(float(v), EXPORT_DECIMALS) for v in np.asarray(outline, np.float64).ravel()]
    return np.asarray(values, np.float32).reshape(-1, 2)


def fit_inside(outline: np.ndarray, container: np.ndarray, step: float = 0.97) -> tuple[np.ndarray, np.ndarray]:
    """Shrinks an outline about its centroid until its raster lies inside a mask.

    Args:
        outline: (N, 2) x, y px, inside or mostly inside ``container``.
        container: (H, W) bool, e.g. the gland mask.
        step: scale applied per attempt, 0 < step < 1.

    Returns:
        (outline, mask): the outline at export precision, shrunk only when its raster
        overflows, and that (H, W) bool raster, inside ``container`` (empty when nothing fits).
    """
    centre = np.asarray(outline, np.float64).mean(axis=0)
    scale = 1.0
    while True:
        fitted = export_precision(centre + scale * (np.asarray(outline, np.float64) - centre))
        mask = rasterise_polygon([fitted], container.shape)
        if not (mask & ~container).any():
            return fitted, mask
        scale *= step
