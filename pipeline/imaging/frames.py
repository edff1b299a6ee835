"""Reading a frame from disk: PNG, JPEG, BMP, TIFF or DICOM, as 8-bit grey.

One reader for training and for the clinic, so a frame decodes to identical pixels
everywhere. Problems raise :class:`FrameReadError`, whose message names the file. Raster
files are decoded here; DICOM files (tags, spacing, ultrasound regions) in
:mod:`pipeline.imaging.dicom`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
FRAME_SUFFIXES = RASTER_SUFFIXES + DICOM_SUFFIXES
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


def _check_path(path: Path) -> str:
    """Returns ``dicom`` or ``raster`` for an existing supported file; raises otherwise."""
    if not path.is_file():
        raise FrameReadError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES or (suffix == "" and has_dicom_preamble(path)):
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
    return "dicom" if suffix in DICOM_SUFFIXES or has_dicom_preamble(path) else None


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
        from pipeline.imaging.dicom import dicom_frames  # pydicom is loaded only for DICOM files

        yield from dicom_frames(path)
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


def has_dicom_preamble(path: Path) -> bool:
    """Whether a file starts with the 128-byte DICOM preamble and ``DICM``.

    Raises:
        OSError: the file cannot be read.
    """
    with path.open("rb") as handle:
        return handle.read(132)[128:132] == b"DICM"
