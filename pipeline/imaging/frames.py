"""Reading a frame from disk: PNG, JPEG, BMP, TIFF or DICOM, as 8-bit grey.

One reader for training and for the clinic, so a frame decodes to identical pixels
everywhere. Problems raise :class:`FrameReadError`, whose message names the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
FRAME_SUFFIXES = RASTER_SUFFIXES + DICOM_SUFFIXES
CM_UNITS = 3  # DICOM PhysicalUnitsX/YDirection code for centimetres
TIFF_SUFFIXES = (".tif", ".tiff")
_KINDS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".bmp": "bmp", ".tif": "tiff", ".tiff": "tiff"}


class FrameReadError(ValueError):
    """A frame file cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class Frame:
    """One grey frame.

    Attributes:
        gray: (H, W) uint8.
        spacing_mm: (x, y) pixel spacing in mm, or None when the file does not say.
        region_box: (x, y, width, height) px of the DICOM ultrasound region (see
            :func:`dicom_region_box`), clipped to the image; None for other files and for
            DICOM without a Sequence of Ultrasound Regions. ``crop: dicom`` crops to it.
    """

    gray: np.ndarray
    spacing_mm: tuple[float, float] | None = None
    region_box: tuple[int, int, int, int] | None = None


def to_gray_uint8(pixels: np.ndarray) -> np.ndarray:
    """Converts a decoded image to (H, W) uint8 grey.

    RGB(A) uses ITU-R 601 luma; integer data wider than 8 bits and float data are
    scaled from their own min-max range to 0-255.
    """
    array = np.asarray(pixels)
    if array.ndim == 3:
        if array.shape[2] == 1:
            array = array[..., 0]
        elif array.shape[2] in (3, 4):
            array = cv2.cvtColor(np.ascontiguousarray(array[..., :3]), cv2.COLOR_RGB2GRAY) \
                if array.dtype == np.uint8 else array[..., :3].astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
        else:
            raise ValueError(f"{array.shape[2]} channels; expected 1, 3 or 4")
    if array.ndim != 2:
        raise ValueError(f"unexpected image shape {array.shape}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    lo, hi = float(array.min()), float(array.max())
    scaled = (array.astype(np.float32) - lo) * (255.0 / (hi - lo) if hi > lo else 0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _raster_pixels(path: Path) -> np.ndarray:
    """Decodes a raster file: (H, W) or (H, W, C); palette, LA, CMYK and YCbCr become RGB.

    TIFFs that Pillow cannot open (more than 4 channels) are read with tifffile.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()  # raises on truncated data
                return np.asarray(image.convert("RGB") if image.mode in ("P", "PA", "LA", "CMYK", "YCbCr") else image)
    except UnidentifiedImageError as error:
        if path.suffix.lower() in TIFF_SUFFIXES and (pixels := _tiff_samples(path)) is not None:
            return pixels
        raise FrameReadError(f"{path}: not a readable image ({error})") from error
    except (OSError, SyntaxError, Image.DecompressionBombWarning) as error:
        raise FrameReadError(f"{path}: not a readable image ({error})") from error


def _tiff_samples(path: Path) -> np.ndarray | None:
    """The first page of a TIFF as (H, W, C) via tifffile, or None when it cannot be read so."""
    try:
        import tifffile  # optional: only TIFFs with more than 4 channels need it
    except ImportError:
        return None
    try:
        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages.first
            pixels, axes = page.asarray(), page.axes
    except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    return np.moveaxis(pixels, axes.index("S"), -1) if "S" in axes and pixels.ndim == 3 else pixels


def _read_raster(path: Path, channel: int | None = None) -> Frame:
    pixels = _raster_pixels(path)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channel is not None and path.suffix.lower() in TIFF_SUFFIXES:
        if not 0 <= channel < channels:
            raise FrameReadError(f"{path}: channel {channel} requested, the file has {channels} channel(s)")
        pixels = pixels if pixels.ndim == 2 else pixels[..., channel]
    try:
        return Frame(to_gray_uint8(pixels))
    except ValueError as error:
        hint = "; choose one with channel=N" if channels > 4 else ""
        raise FrameReadError(f"{path}: {error}{hint}") from error


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


def _dicom_frames(path: Path) -> Iterator[Frame]:
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


def _check_path(path: Path) -> str:
    """Returns ``dicom`` or ``raster`` for an existing supported file; raises otherwise."""
    if not path.is_file():
        raise FrameReadError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES or (suffix == "" and _has_dicom_preamble(path)):
        return "dicom"
    if suffix not in RASTER_SUFFIXES:
        raise FrameReadError(f"{path}: unsupported file type {suffix or '(none)'}; "
                             f"expected one of {', '.join(FRAME_SUFFIXES)}")
    return "raster"


def frame_kind(path: Path | str) -> str | None:
    """The kind of a frame file: ``dicom``, ``png``, ``jpeg``, ``bmp``, ``tiff``, or None if unsupported.

    DICOM by suffix, or by its ``DICM`` preamble when the suffix is not an image one
    (scanners name files ``IMG0001`` or by UID, ``1.2.840....4``).

    Raises:
        OSError: the file cannot be opened to look for the preamble.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _KINDS:
        return _KINDS[suffix]
    return "dicom" if suffix in DICOM_SUFFIXES or _has_dicom_preamble(path) else None


def read_frames(path: Path | str, channel: int | None = None) -> Iterator[Frame]:
    """Yields every frame of a file: one for images, all frames of a multi-frame DICOM.

    Args:
        path: a PNG, JPEG, BMP, TIFF or DICOM file.
        channel: for TIFF files, read this channel (0-based sample index, e.g. 1 for the
            FLAIR channel of the LGG brain-MRI TIFFs) instead of converting RGB(A) to grey;
            TIFFs with more than 4 channels need it. Ignored for other formats.

    Raises:
        FrameReadError: missing, unsupported, corrupt or truncated file, or no such channel.
    """
    path = Path(path)
    if _check_path(path) == "dicom":
        yield from _dicom_frames(path)
    else:
        yield _read_raster(path, channel)


def read_frame(path: Path | str, frame_index: int = 0, channel: int | None = None) -> Frame:
    """Reads one frame as 8-bit grey with its pixel spacing when known.

    Args:
        path: a PNG, JPEG, BMP, TIFF or DICOM file (DICOM by suffix, or by its
            ``DICM`` preamble when the file has no suffix).
        frame_index: which frame of a multi-frame DICOM.
        channel: for TIFF files, the channel to read (see :func:`read_frames`).

    Raises:
        FrameReadError: missing, unsupported, corrupt or truncated file, or no such frame.
    """
    for index, frame in enumerate(read_frames(path, channel)):
        if index == frame_index:
            return frame
    raise FrameReadError(f"{path}: frame {frame_index} requested, the file has {index + 1}")


def _has_dicom_preamble(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(132)[128:132] == b"DICM"
