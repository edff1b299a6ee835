"""Raw scanner output -> de-identified grey PNG frames and a manifest for labelling (``trus frames``).

Round trip: :func:`extract_frames` writes ``images/<patient>_<study>_<source>_<frame>.png``
and ``manifest.csv``; the PNGs go to Roboflow for labelling; the pull stage joins the
export back to the manifest by original name (:mod:`pipeline.ingest.frames_manifest`).

Keys are HMAC-SHA256 under the caller's secret, in base32: stable across runs with one
secret, neither reversible nor recomputable without it.

- patient ``PT`` + 10 characters, from the first of: DICOM PatientID; DICOM PatientName +
  PatientBirthDate; the patient folder, i.e. the first folder below ``raw_dir`` on the
  file's path (``raw_dir``'s own name for files directly in it). Non-DICOM files always
  use the patient folder, so ``raw_dir`` must hold one folder per patient.
- study ``ST`` + 8 characters, from StudyInstanceUID, else the file's folder path below ``raw_dir``.
- source ``SR`` + 8 characters, from the SHA-256 of the file's bytes; byte-identical
  copies of a file are skipped.

De-identification: the PNGs hold pixels only (no text chunks) and the manifest holds no
path, file name, name, id, date or institution. Identifiers burned into the pixels are
removed only for DICOM with ultrasound regions (``blank_outside_region``): every pixel
outside the union of the region boxes becomes 0. Every other frame keeps all its
pixels (counted in :attr:`FramesReport.unblanked_frames`): check those before upload.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.files.output_folder import output_folder
from pipeline.imaging.dicom import dicom_region_boxes, read_dicom
from pipeline.imaging.frames import Frame, FrameReadError, frame_kind, read_frames
from pipeline.imaging.png import write_png_atomically
from pipeline.ingest.records import IngestError
from pipeline.layout import IMAGES, MANIFEST, REGION_COLUMNS

MANIFEST_COLUMNS = ("original_name", "patient", "study", "frame", "width", "height", "spacing_x_mm",
                    "spacing_y_mm", "region_x", "region_y", "region_width", "region_height", "source_digest",
                    "source_kind", "modality")
NAME_PATTERN = r"^PT[A-Z2-7]{10}_ST[A-Z2-7]{8}_SR[A-Z2-7]{8}_\d{4,}\.png$"
MIN_SECRET_BYTES = 16


@dataclass(frozen=True)
class FramesReport:
    """What :func:`extract_frames` did.

    Attributes:
        manifest: one row per written frame, columns :data:`MANIFEST_COLUMNS`.
        errors: one message per unreadable file; they name the file, so print them and
            never write them next to the frames.
        ignored: files that are not images (unsupported type, DICOM without pixel data).
        duplicates: byte-identical copies of an earlier file, skipped.
        unblanked_frames: frames written with all their pixels (not DICOM, no ultrasound
            regions, or blanking off); burned-in text may remain on them.
        mixed_folders: patient folders whose frames got more than one patient key (DICOM
            PatientID vs folder name, or several patients in one folder).
    """

    manifest: pd.DataFrame
    errors: tuple[str, ...]
    ignored: int
    duplicates: int
    unblanked_frames: int
    mixed_folders: int


def pseudonym(secret: bytes, prefix: str, identity: str, length: int) -> str:
    """``prefix`` + ``length`` base32 characters (A-Z, 2-7) of HMAC-SHA256(secret, prefix, identity)."""
    digest = hmac.new(secret, f"{prefix}\0{identity}".encode(), hashlib.sha256).digest()
    return prefix + base64.b32encode(digest).decode()[:length]


def _tag(dataset: Any | None, keyword: str) -> str:
    return "" if dataset is None else str(dataset.get(keyword, "") or "").strip()


def patient_identity(dataset: Any | None, patient_folder: str) -> str:
    """What the patient key hashes: PatientID, else PatientName + PatientBirthDate, else the folder."""
    if patient_id := _tag(dataset, "PatientID"):
        return f"id:{patient_id}"
    if name := _tag(dataset, "PatientName").strip("^ ").upper():
        return f"name:{name}|{_tag(dataset, 'PatientBirthDate')}"
    return f"folder:{patient_folder}"


def study_identity(dataset: Any | None, folder: str) -> str:
    """What the study key hashes: StudyInstanceUID, else the file's folder."""
    uid = _tag(dataset, "StudyInstanceUID")
    return f"uid:{uid}" if uid else f"folder:{folder}"


def blank_outside(gray: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """A copy of (H, W) ``gray`` with 0 outside the union of inclusive (x0, y0, x1, y1) px boxes."""
    keep = np.zeros(gray.shape, bool)
    for x0, y0, x1, y1 in boxes:
        keep[y0:y1 + 1, x0:x1 + 1] = True
    return np.where(keep, gray, 0).astype(np.uint8)


def source_files(raw_dir: Path) -> list[Path]:
    """Every file below ``raw_dir``, sorted by relative path."""
    return sorted((p for p in raw_dir.rglob("*") if p.is_file()), key=lambda p: p.relative_to(raw_dir).parts)


def _folders(path: Path, raw_dir: Path) -> tuple[str, str]:
    """(patient folder, study folder): the first folder below ``raw_dir`` and the file's folder path."""
    parts = path.relative_to(raw_dir).parts[:-1]
    return (parts[0], "/".join(parts)) if parts else (raw_dir.resolve().name,) * 2


def _read_source(path: Path, kind: str, channel: int | None) -> tuple[Any | None, list[Frame]]:
    """(DICOM dataset or None, every frame); no frames for a DICOM without pixel data (e.g. DICOMDIR)."""
    if kind != "dicom":
        return None, list(read_frames(path, channel))
    dataset, frames = read_dicom(path)
    return dataset, list(frames) if "PixelData" in dataset else []


def extract_frames(raw_dir: Path, out_dir: Path, secret: bytes, channel: int | None = None,
                   blank_outside_region: bool = True, force: bool = False) -> FramesReport:
    """Writes ``out_dir/images/*.png`` (8-bit grey) and ``out_dir/manifest.csv`` from raw scans.

    Args:
        raw_dir: a folder of patient folders holding DICOM (single- or multi-frame; by
            suffix or ``DICM`` preamble), PNG, JPEG, BMP or TIFF files, at any depth.
        out_dir: a new or empty folder outside ``raw_dir``, or with ``force`` an earlier output of
            ``trus frames``; it appears complete or not at all (:mod:`pipeline.files.output_folder`).
        secret: the pseudonym key (at least 16 bytes), e.g. from ``TRUS_PSEUDONYM_KEY``.
        channel: for TIFFs, the channel to read instead of converting colour to grey.
        blank_outside_region: zero DICOM pixels outside the ultrasound regions.
        force: replace an earlier output of ``trus frames`` in ``out_dir``.

    Returns:
        The report; its manifest has one row per frame: ``original_name`` (the PNG name),
        ``patient``, ``study``, ``frame`` (index in its source file), ``width``/``height``
        (px), ``spacing_x_mm``/``spacing_y_mm`` (mm per px, empty when unknown),
        ``region_x``/``region_y``/``region_width``/``region_height`` (the DICOM ultrasound
        region in px, clipped to the frame; empty without one; used by ``crop: dicom``),
        ``source_digest`` (SHA-256 of the source bytes, 16 hex), ``source_kind``, ``modality``.

    Raises:
        ValueError: the secret is shorter than 16 bytes.
        IngestError: no such ``raw_dir``, or no frame could be read.
        OutputFolderError: ``out_dir`` may not be written (see :mod:`pipeline.files.output_folder`).
    """
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the pseudonym secret must be at least {MIN_SECRET_BYTES} bytes")
    if not raw_dir.is_dir():
        raise IngestError(f"{raw_dir}: no such folder")
    with output_folder(out_dir, "trus frames", sources=[raw_dir], force=force) as staging:
        report = _extract_into(raw_dir, staging, secret, channel, blank_outside_region)
    return report


def _write_frames(images_dir: Path, frames: list[Frame], boxes: list[tuple[int, int, int, int]],
                  source: dict[str, str], source_key: str) -> list[dict]:
    """Writes a source file's frames as ``<patient>_<study>_<source_key>_<frame>.png``; returns their rows."""
    rows = []
    for index, frame in enumerate(frames):
        name = f"{source['patient']}_{source['study']}_{source_key}_{index:04d}.png"
        write_png_atomically(images_dir / name, blank_outside(frame.gray, boxes) if boxes else frame.gray)
        spacing_x, spacing_y = frame.spacing_mm or (np.nan, np.nan)
        region = dict(zip(REGION_COLUMNS, frame.region_box or (np.nan,) * 4))
        rows.append({**source, "original_name": name, "frame": index, "width": frame.gray.shape[1],
                     "height": frame.gray.shape[0], "spacing_x_mm": spacing_x, "spacing_y_mm": spacing_y, **region})
    return rows


def _extract_into(raw_dir: Path, out_dir: Path, secret: bytes, channel: int | None, blank: bool) -> FramesReport:
    (out_dir / IMAGES).mkdir()
    rows: list[dict] = []
    errors: list[str] = []
    seen: set[str] = set()
    keys_by_folder: dict[str, set[str]] = {}
    ignored = duplicates = unblanked = 0
    for path in source_files(raw_dir):
        try:
            kind = frame_kind(path)
            if kind is None:
                ignored += 1
                continue
            with path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            if digest in seen:
                duplicates += 1
                continue
            dataset, frames = _read_source(path, kind, channel)
        except (OSError, ValueError) as error:  # FrameReadError is a ValueError
            errors.append(str(error) if isinstance(error, FrameReadError) else f"{path}: cannot read ({error})")
            continue
        if not frames:
            ignored += 1
            continue
        seen.add(digest)
        patient_folder, folder = _folders(path, raw_dir)
        source = {"patient": pseudonym(secret, "PT", patient_identity(dataset, patient_folder), 10),
                  "study": pseudonym(secret, "ST", study_identity(dataset, folder), 8),
                  "source_digest": digest[:16], "source_kind": kind, "modality": _tag(dataset, "Modality")}
        keys_by_folder.setdefault(patient_folder, set()).add(source["patient"])
        boxes = dicom_region_boxes(dataset, frames[0].gray.shape[1], frames[0].gray.shape[0]) if blank else []
        unblanked += 0 if boxes else len(frames)
        rows += _write_frames(out_dir / IMAGES, frames, boxes, source, pseudonym(secret, "SR", digest, 8))
    if not rows:
        raise IngestError(f"{raw_dir}: no frame could be read ({len(errors)} unreadable, {ignored} not images)"
                          + "".join(f"\n  {message}" for message in errors[:5]))
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    manifest.to_csv(out_dir / MANIFEST, index=False)
    return FramesReport(manifest, tuple(errors), ignored, duplicates, unblanked,
                        sum(len(keys) > 1 for keys in keys_by_folder.values()))
