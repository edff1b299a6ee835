"""DICOM frames: pixels as 8-bit grey, pixel spacing and the ultrasound regions.

Ultrasound DICOM usually has no PixelSpacing: the spacing sits in the Sequence of Ultrasound
Regions (PhysicalDeltaX/Y in cm), and region boxes can reach past the image, so they are
clipped. pydicom is imported on first use only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.imaging.frames import Frame, FrameReadError, to_gray_uint8

CM_UNITS = 3  # DICOM PhysicalUnitsX/YDirection code for centimetres


def dicom_spacing_mm(dataset: object, width: int, height: int) -> tuple[float, float] | None:
    """Pixel spacing (x, y) in mm from a DICOM dataset.

    Prefers the ultrasound region (Sequence of Ultrasound Regions, PhysicalDeltaX/Y in
    cm) that covers the most of the image, with region boxes clipped to the image;
    falls back to PixelSpacing (row, column order, mm).
    """
    best: tuple[int, tuple[float, float]] | None = None
    for region in getattr(dataset, "SequenceOfUltrasoundRegions", None) or []:
        if getattr(region, "PhysicalUnitsXDirection", None) != CM_UNITS or \
                getattr(region, "PhysicalUnitsYDirection", None) != CM_UNITS:
            continue
        x0, y0, x1, y1 = _clipped_box(region, width, height)
        area = max(0, x1 - x0 + 1) * max(0, y1 - y0 + 1)
        spacing = (abs(float(region.PhysicalDeltaX)) * 10.0, abs(float(region.PhysicalDeltaY)) * 10.0)
        if area > 0 and spacing[0] > 0 and spacing[1] > 0 and (best is None or area > best[0]):
            best = (area, spacing)
    if best is not None:
        return best[1]
    pixel_spacing = getattr(dataset, "PixelSpacing", None)
    if pixel_spacing is not None and len(pixel_spacing) == 2:
        return float(pixel_spacing[1]), float(pixel_spacing[0])
    return None


def _clipped_box(region: Any, width: int, height: int) -> tuple[int, int, int, int]:
    """A region's (x0, y0, x1, y1) box, inclusive px, clipped to a width x height image (may be empty)."""
    return (max(0, int(region.RegionLocationMinX0)), max(0, int(region.RegionLocationMinY0)),
            min(width - 1, int(region.RegionLocationMaxX1)), min(height - 1, int(region.RegionLocationMaxY1)))


def dicom_region_boxes(dataset: object, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Boxes of every ultrasound region (any physical units), clipped to the image.

    Args:
        dataset: a DICOM dataset, with or without a Sequence of Ultrasound Regions.
        width, height: the image size, px.

    Returns:
        Non-empty (x0, y0, x1, y1) boxes, inclusive px, inside the image; [] without regions.
    """
    boxes = [_clipped_box(region, width, height)
             for region in getattr(dataset, "SequenceOfUltrasoundRegions", None) or []]
    return [box for box in boxes if box[0] <= box[2] and box[1] <= box[3]]


def dicom_region_box(dataset: object, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The image's main ultrasound region, clipped to the image.

    The largest (after clipping) of the 2-D regions (RegionSpatialFormat 1, tissue or
    flow images); of all regions when none is 2-D (an M-mode or Doppler-only file).

    Args:
        dataset: a DICOM dataset, with or without a Sequence of Ultrasound Regions.
        width, height: the image size, px.

    Returns:
        (x, y, width, height) px inside the image, or None without a non-empty region.
    """
    regions = list(getattr(dataset, "SequenceOfUltrasoundRegions", None) or [])
    two_d = [region for region in regions if getattr(region, "RegionSpatialFormat", None) == 1]
    boxes = [_clipped_box(region, width, height) for region in two_d or regions]
    boxes = [box for box in boxes if box[0] <= box[2] and box[1] <= box[3]]
    if not boxes:
        return None
    x0, y0, x1, y1 = max(boxes, key=lambda box: (box[2] - box[0] + 1) * (box[3] - box[1] + 1))
    return x0, y0, x1 - x0 + 1, y1 - y0 + 1


def _dicom_errors() -> tuple[type[Exception], ...]:
    from pydicom.errors import InvalidDicomError

    return InvalidDicomError, OSError, AttributeError, ValueError, RuntimeError, NotImplementedError


def read_dicom(path: Path | str) -> tuple[Any, Iterator[Frame]]:
    """Opens a DICOM file whatever its name, for its tags and its frames, decoding pixels once.

    Returns:
        The pydicom dataset (all tags) and an iterator over its frames, decoded on first use.

    Raises:
        FrameReadError: not a readable DICOM file (the iterator raises it for pixel data).
    """
    import pydicom  # imported here: only DICOM users pay for it

    path = Path(path)
    try:
        dataset = pydicom.dcmread(path)
    except _dicom_errors() as error:
        raise FrameReadError(f"{path}: not a readable DICOM image ({error})") from error
    return dataset, _dataset_frames(path, dataset)


def dicom_frames(path: Path) -> Iterator[Frame]:
    """Every frame of a DICOM file (see :func:`read_dicom`)."""
    yield from read_dicom(path)[1]


def _dataset_frames(path: Path, dataset: Any) -> Iterator[Frame]:
    try:
        pixels = dataset.pixel_array  # pydicom 3 returns YBR data already converted to RGB
    except _dicom_errors() as error:
        raise FrameReadError(f"{path}: not a readable DICOM image ({error})") from error
    photometric = str(getattr(dataset, "PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut
        pixels = apply_color_lut(pixels, dataset)
    if pixels.dtype != np.uint8 and pixels.ndim >= 3 and pixels.shape[-1] == 3 and pixels.max() <= 255:
        pixels = pixels.astype(np.uint8)
    multi_frame = int(getattr(dataset, "NumberOfFrames", 1) or 1) > 1
    for frame_pixels in (pixels if multi_frame else [pixels]):
        try:
            gray = to_gray_uint8(frame_pixels)
        except ValueError as error:
            raise FrameReadError(f"{path}: {error}") from error
        if photometric == "MONOCHROME1":
            gray = 255 - gray
        yield Frame(gray, dicom_spacing_mm(dataset, gray.shape[1], gray.shape[0]),
                    dicom_region_box(dataset, gray.shape[1], gray.shape[0]))
