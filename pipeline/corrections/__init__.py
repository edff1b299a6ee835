"""Clinicians' corrected masks as Roboflow "COCO Segmentation" annotations (no network here).

- :mod:`pipeline.corrections.frames`: :class:`CorrectedFrame`, one frame's (C, H, W) masks.
- :mod:`pipeline.corrections.polygons`: masks -> polygon rings that this project's ingest
  rasterises back into the same masks (several parts, holes as keyhole rings).
- :mod:`pipeline.corrections.coco`: :func:`write_corrections` / :func:`read_corrections`, the
  corrections folder that ``trus upload-corrections`` sends to the Roboflow project.
"""

from pipeline.corrections.coco import (
           ANNOTATIONS_FILE,
           frame_document_path,
           read_corrections,
           write_corrections,
)
from pipeline.corrections.frames import CorrectedFrame, CorrectionsError
from pipeline.corrections.polygons import (
           MaskPart,
           keyhole_ring,
           mask_parts,
           mask_to_rings,
)

__all__ = ["ANNOTATIONS_FILE", "CorrectedFrame", "CorrectionsError", "MaskPart", "frame_document_path",
           "keyhole_ring", "mask_parts", "mask_to_rings", "read_corrections", "write_corrections"]
