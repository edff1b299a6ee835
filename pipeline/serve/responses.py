"""The service's JSON: one frame's classes, areas, outlines, plane and review flag; the model's card.

Coordinates are the original frame's pixels in the project's convention (pixel column c, row r
is the unit square centred on x = c, y = r). Each class's mask is given as its parts
(8-connected components), each an outline and its holes, traced as for the corrections sent to
Roboflow (:func:`pipeline.corrections.polygons.mask_parts`): filling them by the pixel-centre
rule gives the mask back exactly.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.corrections.polygons import mask_parts
from pipeline.imaging.calibration import SPACING_SOURCES
from pipeline.inference.frame_outputs import FrameOutputs

if TYPE_CHECKING:
    from pipeline.inference.predictor import Segmenter

COORDINATE_DECIMALS = 2
"""Decimals of the outline vertices, px (they sit on quarter pixels: exact in 2 decimals)."""


def _ring(points: np.ndarray) -> list[list[float]]:
    """(N, 2) x, y px -> [[x, y], ...] rounded to :data:`COORDINATE_DECIMALS`."""
    return np.round(points, COORDINATE_DECIMALS).tolist()


def class_json(name: str, mask: np.ndarray, area_px: int, area_mm2: float | None) -> dict[str, Any]:
    """One class of a frame: its area and its parts' outlines.

    Args:
        name: the class.
        mask: (H, W) bool at the frame's size.
        area_px: the mask's pixel count.
        area_mm2: its area in mm², or None without a spacing.
    """
    parts = [{"area_px": part.pixels, "outline": _ring(part.outline), "holes": [_ring(hole) for hole in part.holes]}
             for part in mask_parts(mask)]
    return {"name": name, "area_px": area_px, "area_mm2": None if area_mm2 is None else round(area_mm2, 3),
            "parts": parts}


def frame_json(index: int, gray: np.ndarray, outputs: FrameOutputs,
               images: dict[str, bytes] | None = None) -> dict[str, Any]:
    """One segmented frame as the service reports it.

    Args:
        index: the frame's index in its file (0 for an image).
        gray: (H, W) uint8, the frame.
        outputs: :func:`pipeline.inference.frame_outputs.frame_outputs` of it.
        images: PNG bytes to embed as ``data:`` URLs (``mask``, ``overlay``), or None.
    """
    calibration = outputs.calibration
    spacing = calibration.spacing_mm
    result: dict[str, Any] = {
        "frame": index, "width": int(gray.shape[1]), "height": int(gray.shape[0]),
        "spacing": {"x_mm": None if spacing is None else spacing[0], "y_mm": None if spacing is None else spacing[1],
                    "source": calibration.source, "described": calibration.described},
        "classes": [class_json(area.name, mask, area.pixels, area.mm2)
                    for area, mask in zip(outputs.areas, outputs.masks)],
        "plane": outputs.plane,
        "plane_probability": None if outputs.plane_probability is None else round(outputs.plane_probability, 4),
        "review": {"flag": outputs.review_reason is not None, "reason": outputs.review_reason},
    }
    for name, data in (images or {}).items():
        result[f"{name}_png"] = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return result


def model_json(segmenter: Segmenter, model_sha256: str) -> dict[str, Any]:
    """The model's card: which file runs and why, its contract (classes, preprocessing, metrics, versions).

    Args:
        segmenter: the loaded model.
        model_sha256: the SHA-256 of the file that runs (hex).
    """
    contract = segmenter.contract
    return {
        "name": f"{contract.arch}/{contract.encoder}" if contract.arch else segmenter.path.stem,
        "version": model_sha256[:12], "file": segmenter.path.name, "sha256": model_sha256,
        "precision": segmenter.precision, "choice": segmenter.choice.reason,
        "spacing_sources": SPACING_SOURCES, "contract": json.loads(contract.to_json()),
    }


def model_summary(card: dict[str, Any]) -> dict[str, Any]:
    """The model's name, version and precision, repeated in every segmentation response."""
    return {key: card[key] for key in ("name", "version", "precision")}
