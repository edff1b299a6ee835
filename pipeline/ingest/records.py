"""One annotated frame of an export, whatever the export format, and turning it into masks.

Polygon formats (COCO Segmentation, YOLOv8) give ``shapes``; mask formats
(``png-mask-semantic``) give a mask file and the pixel values of each class. A reader
returns :class:`ExportContents`: the frames, and :class:`ReadFinding` s for what it read
but could not use (it never drops anything silently).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pipeline.imaging.polygons import fill_rings
from pipeline.ingest.names import ExportName, shown

Ring = np.ndarray
"""(N, 2) float32 polygon vertices x, y in px (pixel centres at integers); closed or not."""

Shape = tuple[Ring, ...]
"""One annotated object: its rings (COCO's list of polygons), filled as their union.

As in pycocotools, each ring is filled on its own and the results are joined: COCO polygons
have no holes, so a ring inside another adds nothing and a ring listed twice stays filled.
A pixel is filled when its centre lies inside (:mod:`pipeline.imaging.polygons`).
"""


class IngestError(ValueError):
    """An export is missing, malformed or inconsistent; the message names the file."""


class SizeMismatchError(IngestError):
    """A frame's mask file is not the size of its image (a ``size_mismatch`` QC finding)."""


@dataclass(frozen=True)
class ReadFinding:
    """Something a reader read but could not use: a QC finding before its action is known.

    Attributes:
        kind: a :class:`pipeline.config.QcParams` field name (``unknown_category``, ...).
        frame: the export file name it concerns, or ``''`` for the export as a whole.
        detail: what was not used and why, naming the file (and line or JSON path).
    """

    kind: str
    frame: str
    detail: str


@dataclass(frozen=True)
class ExportFrame:
    """One image of an export with its annotations.

    Attributes:
        image_path: the exported image file.
        split: the export folder it came from (Roboflow's own train/valid/test).
        name: the parsed Roboflow file name (original name and hash).
        width, height: image size the annotations refer to, px.
        annotated: True when any class has an annotation on this frame.
        shapes: polygon formats: per output channel, the objects of that class.
        mask_path: mask formats: the label mask file (pixel value = class index).
        mask_values: mask formats: per output channel, the mask values that belong to it.
        tags: the image's Roboflow tags (COCO exports carry them; other formats do not).
    """

    image_path: Path
    split: str
    name: ExportName
    width: int
    height: int
    annotated: bool
    shapes: tuple[tuple[Shape, ...], ...] = ()
    mask_path: Path | None = None
    mask_values: tuple[tuple[int, ...], ...] = ()
    tags: tuple[str, ...] = ()

    def masks(self, n_classes: int) -> np.ndarray:
        """The frame's label masks.

        Returns:
            (n_classes, height, width) bool, one mask per output channel.

        Raises:
            IngestError: the mask file is unreadable.
        SizeMismatchError: the mask file is not the image's size.
        """
        if self.mask_path is not None:
            return masks_from_label_image(self.mask_path, self.mask_values, self.width, self.height)
        return rasterise_shapes(self.shapes, n_classes, self.width, self.height)


def fill_shape(canvas: np.ndarray, shape: Shape) -> None:
    """Fills one object into a 2-D canvas, in place: covered pixels become 1.

    Args:
        canvas: (H, W) array (uint8 or bool), the object's class channel.
        shape: the object's rings, x, y px; their union is filled by the pixel-centre rule
            (:func:`pipeline.imaging.polygons.fill_rings`).
    """
    fill_rings(canvas, shape)


def rasterise_shapes(shapes: tuple[tuple[Shape, ...], ...], n_classes: int, width: int, height: int) -> np.ndarray:
    """Per-channel union of filled objects.

    Args:
        shapes: per output channel, its objects (each the union of its rings).
        n_classes: number of output channels (``shapes`` may be empty for a frame without any).
        width, height: mask size, px.

    Returns:
        (n_classes, height, width) bool; a pixel is set when its centre lies inside an object.
    """
    masks = np.zeros((n_classes, height, width), bool)
    for channel, objects in enumerate(shapes):
        fill_rings(masks[channel], [ring for shape in objects for ring in shape])
    return masks


def masks_from_label_image(path: Path, values: tuple[tuple[int, ...], ...], width: int, height: int) -> np.ndarray:
    """Per-channel masks from a single-channel label image (pixel value = class index).

    Raises:
        IngestError: unreadable, not single-channel, or not ``width`` x ``height``.
    """
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise IngestError(f"{shown(path)}: mask file missing or unreadable")
    if label.ndim == 3:  # some tools save grey masks as 3 equal channels
        if not (np.array_equal(label[..., 0], label[..., 1]) and np.array_equal(label[..., 0], label[..., 2])):
            raise IngestError(f"{shown(path)}: a colour mask; expected one channel of class indices")
        label = label[..., 0]
    if label.shape != (height, width):
        raise SizeMismatchError(f"{shown(path)}: mask is {label.shape[1]}x{label.shape[0]} but its image is {width}x{height}")
    return np.stack([np.isin(label, list(channel_values)) for channel_values in values]) if values \
        else np.zeros((0, height, width), bool)


@dataclass(frozen=True)
class ExportContents:
    """What a reader read from an export.

    Iterating it (and ``len``) goes over the frames, so it reads like the list of frames.

    Attributes:
        frames: every image of the export, in a stable order.
        findings: what the reader could not use (see :class:`ReadFinding`), in reading order.
        info: the export's own description (COCO's ``info`` block), or empty.
    """

    frames: tuple[ExportFrame, ...]
    findings: tuple[ReadFinding, ...] = ()
    info: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator[ExportFrame]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)
