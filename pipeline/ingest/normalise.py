"""Normalising an unpacked export into original-size grey frames, bitmask label masks and a manifest.

Whatever the format, every kept frame becomes ``images/<frame_id>.png`` (uint8 grey, the
frame's own size), ``masks/<frame_id>.png`` (uint8 bitmask, bit c = class c) and one
manifest row; the annotation QC findings are collected on the way (see
:mod:`pipeline.ingest.qc`). :mod:`pipeline.ingest.source` wraps this for the pull stage
and ``trus ingest``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.config import DataParams, QcParams, setting
from pipeline.imaging.frames import FrameReadError, read_frame
from pipeline.imaging.masks import pack_masks
from pipeline.imaging.png import write_png_atomically
from pipeline.ingest.formats import READERS, detect_format
from pipeline.ingest.frames_manifest import join_frames_manifest, read_frames_manifest
from pipeline.ingest.names import is_hidden, patient_of, shown
from pipeline.planes import resolve_plane
from pipeline.ingest.qc import Finding, export_findings, frame_findings, pixel_digest, reader_findings
from pipeline.ingest.records import ExportFrame, IngestError, SizeMismatchError
from pipeline.layout import IMAGES, MANIFEST, MASKS, REGION_COLUMNS, SOURCE_INFO
from pipeline.files.atomic import write_json_atomically

UNKNOWN_PATIENT_PREFIX = "unknown:"


@dataclass(frozen=True)
class NormalisedExport:
    """What :func:`normalise_export` wrote and found.

    Attributes:
        manifest: one row per written frame (see :func:`manifest_row`).
        findings: the QC findings whose action is not ``ignore``: the reader's (what it could
            not use), then each frame's, then the export's.
        export_format: the format that was read (``auto`` resolved).
    """

    manifest: pd.DataFrame
    findings: list[Finding]
    export_format: str


def content_digest(root: Path) -> str:
    """SHA-256 (first 16 hex) over the relative paths and bytes of every file below ``root``.

    The dataset version recorded in the model: the same export gives the same digest,
    whether it arrived as a folder, a zip, a zip wrapping it in a folder, or from the API.
    Dot-files and ``__MACOSX`` (what a Mac adds) do not count.
    """
    digest = hashlib.sha256()
    files = (p for p in root.rglob("*") if p.is_file())
    for path in sorted(p for p in files if not any(is_hidden(PurePath(part)) for part in p.relative_to(root).parts)):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def manifest_row(frame: ExportFrame, masks: np.ndarray, patient: str | None, classes: tuple[str, ...],
                 plane: tuple[str, str] = ("", "")) -> dict:
    """The manifest row of one frame.

    Columns: ``frame_id``, ``patient`` (``unknown:<original stem>`` when unknown),
    ``original_name``, ``export_file``, ``export_split`` (Roboflow's folder), ``width``,
    ``height`` (px), ``spacing_x_mm``, ``spacing_y_mm`` (mm per px) and ``region_x``,
    ``region_y``, ``region_width``, ``region_height`` (the DICOM ultrasound region, px), NaN
    until a frames manifest supplies them, ``annotated``, ``plane`` and ``plane_source``
    (``plane``: (plane, source) from :func:`pipeline.planes.resolve_plane`, ``""``
    when the data does not say), and ``px_<class>`` (mask pixel count per class).
    """
    row = {
        "frame_id": frame.name.frame_id,
        "patient": patient or f"{UNKNOWN_PATIENT_PREFIX}{frame.name.original_stem}",
        "original_name": frame.name.original_name,
        "export_file": frame.image_path.name,
        "export_split": frame.split,
        "width": frame.width,
        "height": frame.height,
        "spacing_x_mm": np.nan,
        "spacing_y_mm": np.nan,
        **dict.fromkeys(REGION_COLUMNS, np.nan),
        "annotated": frame.annotated,
        "plane": plane[0],
        "plane_source": plane[1],
    }
    row.update({f"px_{name}": int(mask.sum()) for name, mask in zip(classes, masks)})
    return row


def _grey(path: Path) -> np.ndarray:
    """The decoded grey frame; its error names the file as :func:`shown` does (a zip's member, not a temp folder).

    Raises:
        FrameReadError: the image cannot be decoded.
    """
    try:
        return read_frame(path).gray
    except FrameReadError as error:  # its message names the path, maybe twice (the decoder's own words)
        raise FrameReadError(str(error).replace(str(path), shown(path))) from error


def _frame_masks(frame: ExportFrame, n_classes: int, qc: QcParams) -> tuple[np.ndarray | None, list[Finding]]:
    """The frame's (C, H, W) bool masks, or None with a ``size_mismatch`` finding for a mask file of another size."""
    try:
        return frame.masks(n_classes), []
    except SizeMismatchError as error:
        action = qc.action("size_mismatch")
        return None, [] if action == "ignore" else [Finding("size_mismatch", action, frame.image_path.name,
                                                            str(error))]


def normalise_export(export_root: Path, out_dir: Path, data: DataParams, qc: QcParams, origin: str = "",
                     progress: bool = True) -> NormalisedExport:
    """Writes ``images/``, ``masks/``, ``manifest.csv`` and ``source.json`` for every usable frame.

    A frame whose image and annotations disagree in size is never written (its masks
    would not fit); ``qc.size_mismatch`` says whether that stops the caller.

    Args:
        export_root: an unpacked export, of ``data.format`` (``auto``: detected).
        out_dir: an existing, empty folder (the caller makes it atomic).
        data: classes, patient pattern, unannotated policy, frames manifest.
        qc: which findings are reported and at which level.
        origin: where the export came from (``local:data``, ``roboflow:W/P/V``), for ``source.json``.
        progress: show a progress bar.

    Raises:
        IngestError: unreadable or inconsistent export (missing images or classes, the same
            image twice, no usable frame, a bad frames manifest).
        FrameReadError: an image that cannot be decoded.
    """
    export_format = detect_format(export_root) if data.format == "auto" else data.format
    contents = READERS[export_format](export_root, data.classes)
    frames = contents.frames
    frames_table = read_frames_manifest(Path(data.frames_manifest)) if data.frames_manifest else None
    known_stems = set(frames_table.index) if frames_table is not None else set()
    listed_planes = frames_table["plane"].to_dict() if frames_table is not None and "plane" in frames_table else {}
    (out_dir / IMAGES).mkdir()
    (out_dir / MASKS).mkdir()
    rows, findings, digests = [], reader_findings(contents.findings, qc), {}
    dropped = mismatched = 0
    for frame in tqdm(frames, desc="pull", unit="frame", disable=None if progress else True):
        if not frame.annotated and data.unannotated == "drop":
            dropped += 1
            continue
        gray = _grey(frame.image_path)
        masks, mismatch = _frame_masks(frame, len(data.classes), qc)
        findings += mismatch
        if masks is None:
            mismatched += 1
            continue
        patient = patient_of(frame.name.original_name, data.patient_pattern)
        known = patient is not None or PurePath(frame.name.original_name).stem in known_stems
        image_size = (gray.shape[1], gray.shape[0])
        findings += frame_findings(frame, image_size, masks, known, data.classes, qc)
        if image_size != (frame.width, frame.height):
            mismatched += 1
            continue
        plane = resolve_plane(frame.tags, listed_planes.get(PurePath(frame.name.original_name).stem),
                              frame.name.original_name, data.plane_pattern)
        row = manifest_row(frame, masks, patient, data.classes, plane)
        write_png_atomically(out_dir / IMAGES / f"{row['frame_id']}.png", gray)
        write_png_atomically(out_dir / MASKS / f"{row['frame_id']}.png", pack_masks(masks))
        digests[row["frame_id"]] = pixel_digest(gray)
        rows.append(row)
    manifest = pd.DataFrame(rows)
    if manifest.empty:
        raise IngestError(f"{shown(export_root)}: no usable frames: {len(frames)} frame(s) in the export, {dropped} "
                          f"without annotations left out by {setting('data.unannotated', data.unannotated)}, "
                          f"{mismatched} not the size of their annotations")
    duplicated = manifest["frame_id"][manifest["frame_id"].duplicated()].tolist()
    if duplicated:
        raise IngestError(f"{shown(export_root)}: the same image appears twice: {', '.join(duplicated[:5])}")
    if frames_table is not None:
        manifest = join_frames_manifest(manifest, Path(data.frames_manifest), frames_table)
    findings += export_findings(manifest, digests, data.classes, qc)
    manifest.to_csv(out_dir / MANIFEST, index=False)
    write_json_atomically(out_dir / SOURCE_INFO, {
        "origin": origin,
        "format": export_format,
        "info": contents.info,
        "dataset_version": content_digest(export_root),
        "frames": len(manifest),
        "patients": int(manifest["patient"].nunique()),
    })
    return NormalisedExport(manifest, findings, export_format)


__all__ = ["NormalisedExport", "content_digest", "manifest_row", "normalise_export"]
