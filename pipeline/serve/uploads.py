"""Uploaded files: their type by content, and their frames read by the product's one reader.

A file's type is decided by its first bytes, never by its name: PNG, JPEG, BMP, TIFF or DICOM
(the ``DICM`` marker after the 128-byte preamble). Its frames are read by
:func:`pipeline.imaging.frames.read_frames`, the reader of ``trus segment`` and the app, from a
private temporary folder that is removed before the response is sent, so a frame decodes to the
same pixels as from disk and nothing uploaded stays on disk.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.imaging.frames import Frame, FrameReadError, read_frames

SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "png"), (0, b"\xff\xd8\xff", "jpeg"), (0, b"BM", "bmp"),
    (0, b"II*\x00", "tiff"), (0, b"MM\x00*", "tiff"), (128, b"DICM", "dicom"),
)
"""(offset, bytes, kind): the signature each accepted kind starts with."""
SUFFIXES = {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp", "tiff": ".tif", "dicom": ".dcm"}
"""kind -> the suffix its temporary file gets, so the reader decodes it as that kind."""
ACCEPTED = "PNG, JPEG, BMP, TIFF or DICOM"


class UploadError(ValueError):
    """An upload the service refuses: ``status`` is the HTTP status, the message one line naming the file."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Upload:
    """One uploaded file: ``name`` as the client gave it (only ever echoed back), ``data`` its bytes."""

    name: str
    data: bytes


def sniff_kind(data: bytes) -> str | None:
    """The kind of a file from its first bytes (``png``, ``jpeg``, ``bmp``, ``tiff``, ``dicom``), or None."""
    for offset, signature, kind in SIGNATURES:
        if data[offset:offset + len(signature)] == signature:
            return kind
    return None


def upload_kind(upload: Upload) -> str:
    """The upload's kind by content.

    Raises:
        UploadError: 415, an empty file or one that is none of the accepted kinds.
    """
    if not upload.data:
        raise UploadError(415, f"{upload.name}: empty file; expected a {ACCEPTED} file")
    kind = sniff_kind(upload.data)
    if kind is None:
        raise UploadError(415, f"{upload.name}: not a {ACCEPTED} file (judged by its content, not its name)")
    return kind


def read_upload(upload: Upload) -> list[Frame]:
    """Every frame of an upload (one for an image, all of a multi-frame DICOM), read as from disk.

    The bytes are written to a private temporary folder (mode 0700), read by
    :func:`pipeline.imaging.frames.read_frames`, and the folder is removed before this returns,
    whatever happens.

    Raises:
        UploadError: 415, see :func:`upload_kind`; 422, a corrupt or truncated file, or one
            without frames (the reader's one-line reason, naming the upload, not the temporary file).
    """
    kind = upload_kind(upload)
    with tempfile.TemporaryDirectory(prefix="trus-serve-") as folder:
        path = Path(folder) / f"upload{SUFFIXES[kind]}"
        path.write_bytes(upload.data)
        try:
            frames = list(read_frames(path))
        except FrameReadError as error:
            raise UploadError(422, str(error).replace(str(path), upload.name)) from None
    if not frames:
        raise UploadError(422, f"{upload.name}: the {kind.upper()} file holds no frames")
    return frames
